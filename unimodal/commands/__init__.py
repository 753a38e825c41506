"""What each script in scripts/ does: parse its options, call the runners, print where things went."""
