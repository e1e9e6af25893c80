"""Safety of the trial, pure: the CTCAE term list, adverse-event rules (ICH E2A seriousness,
relatedness, outcome, validation, AE of special interest), the SAE reporting clock, grades proposed
from lab values and the protocol's dose-limiting toxicity (DLT) rules. No Django here."""
