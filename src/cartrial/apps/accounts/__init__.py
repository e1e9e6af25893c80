"""Users, their memberships (one role per center), API tokens, and the one access module."""
