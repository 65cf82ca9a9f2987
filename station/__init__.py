"""station: acquisition, elicitation and evaluation station for 2D+3D micro-expression databases."""

__version__ = "0.1.0"
