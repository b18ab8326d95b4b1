"""Who is acting: API tokens with roles, and accounts with their registration decision."""

__all__: list[str] = []
