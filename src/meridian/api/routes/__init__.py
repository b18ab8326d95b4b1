"""One router per noun; each endpoint's docstring is its OpenAPI summary and names its roles."""

__all__: list[str] = []
