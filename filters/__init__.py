"""Document filters: each measures a document (pure `score`) and decides from the scores (`reject_reason`)."""
