"""The subcommands of ``proxygrad``: one module each, with ``register(subparsers)`` adding its parser and
setting ``func`` (a function of the parsed arguments that returns the exit code). Add a module to COMMANDS to
add a subcommand; modules are imported when the parser is built, so keep their imports of heavy libraries
inside ``run``."""
from importlib import import_module

COMMANDS = ("visualize", "sweep", "report", "demo", "train_bundled", "gradients", "regions",
            "train", "table", "invert", "beyond", "toy", "gap", "spectrum", "compare")


def register_all(sub) -> None:
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").register(sub)
