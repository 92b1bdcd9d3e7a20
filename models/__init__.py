"""The default model pack's manifest (data; installed as farm.models.default)."""
