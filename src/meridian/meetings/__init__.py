"""Meetings: data-centre regions, placement, grants, and the live meetings of the control plane."""

__all__: list[str] = []
