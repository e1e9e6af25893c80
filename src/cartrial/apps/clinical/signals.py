"""What the one store of lab observations tells the apps above it, whatever the entry path.

The casebook's forms, the biology app's entry and the screening form all write through
`clinical.services`; an app that must react to a result (the biology app's kinetics flags) listens
here instead of being called by each entry path, which may not import it (sibling apps: the layer
contract in pyproject.toml).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the write's transaction, after the rows and their audit entries, with keyword
# arguments: `actor` (Actor), `subject` (Subject), `observations` (the LabObservation rows stored or
# corrected) and `previous` (for a correction, the corrected rows as they stood before it; empty
# for new results). A receiver's error rolls the write back with it.
lab_observations_recorded = Signal()
