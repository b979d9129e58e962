"""The built-in OpenAI-compatible streaming simulator (see ``server`` and ``script``)."""

from .script import Fault, parse_fault
from .server import SimConfig, SimRequest, Simulator, SimulatorThread

__all__ = ["Fault", "SimConfig", "SimRequest", "Simulator", "SimulatorThread", "parse_fault"]
