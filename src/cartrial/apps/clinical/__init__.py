"""Clinical data of subjects: the one store of lab observations that every form writes to."""
