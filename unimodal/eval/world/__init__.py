"""A run scored on the synthetic world: evaluation scenes and categories (:mod:`.suite`), the one scoring engine
for every direction (:mod:`.engine`), instruction answers, LM bits per token, reports, figures, and
``scripts/evaluate.py run=`` (:mod:`.run`)."""
