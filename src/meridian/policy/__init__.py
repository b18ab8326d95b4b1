"""Policy: the bundle format, its compilation, and the decision engine."""

from .compiled import CompiledBundle, compile_bundle
from .decision import Alternatives, BundleRef, Decision, Location, PartnerRef, Reason
from .engine import Engine
from .loader import LoadedBundle, default_bundle_path, load_bundle, load_bundle_text
from .model import Bundle, bundle_json_schema
from .request import Action, Request, Resource, Subject, parse_request, parse_request_json

__all__ = [
    "Action",
    "Alternatives",
    "Bundle",
    "BundleRef",
    "CompiledBundle",
    "Decision",
    "Engine",
    "LoadedBundle",
    "Location",
    "PartnerRef",
    "Reason",
    "Request",
    "Resource",
    "Subject",
    "bundle_json_schema",
    "compile_bundle",
    "default_bundle_path",
    "load_bundle",
    "load_bundle_text",
    "parse_request",
    "parse_request_json",
]
