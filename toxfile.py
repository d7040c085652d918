"""tox's in-tree plugin: one env per framework serves both labels. Under ``tox -m compare`` an env
that has ``compare_commands`` runs them in place of its ``commands``, so the framework installed
once runs the runs and probes for the report (``compare``) and the tests (``test``, the ``commands``)."""

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command
from tox.plugin import impl


@impl
def tox_add_env_config(env_conf, state):
    env_conf.add_config("compare_commands", of_type=list[Command], default=[], desc="the commands under -m compare")
    if "compare" in (getattr(state.conf.options, "labels", None) or ()) and env_conf["compare_commands"]:
        env_conf.loaders.insert(0, MemoryLoader(commands=env_conf["compare_commands"]))
