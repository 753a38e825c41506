"""A run on real images, which no exact analyzer reads: text->image judged by small networks trained here
(:mod:`.judges`) and, from user-given weights, the standard FID (:mod:`.run`)."""
