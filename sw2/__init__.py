"""sw2: a YAML spec and a dataset in, a fast-trained, evaluated model bundle out."""

__version__ = "0.1.0"

from sw2.api import evaluate, load, train  # noqa: E402
from sw2.errors import UserError  # noqa: E402
from sw2.spec import Spec, load_spec  # noqa: E402

__all__ = ["Spec", "UserError", "__version__", "evaluate", "load", "load_spec", "train"]
