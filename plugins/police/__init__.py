"""Police: residence registration and identity verification against the population database (VNeID)."""
