"""Pure trial logic: rules, scores, codes, planning and models. Never imports Django or does I/O."""
