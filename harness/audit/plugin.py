"""The pytest plugin (entry point ``pytest11``: installed with decaylens, on in every test session):
the ``decay_audit`` fixture pins a project's own weight-decay setup in its own tests::

    def test_my_setup_spares_norms_and_biases(decay_audit):
        model, optimizer = build()                      # your code, as you train
        decay_audit(model, optimizer).assert_spares("norm", "bias")

A framework release or a refactor that starts decaying a norm fails the test, naming each tensor."""

import os

import pytest

# The module an optimizer's type comes from -> the backend that audits it (Keras: by KERAS_BACKEND).
_BY_MODULE = {"torch": "torch", "tf_keras": "tensorflow-keras2", "optax": "jax", "mxnet": "mxnet", "paddle": "paddle",
              "mlx": "mlx"}  # fmt: skip
_KERAS = {"tensorflow": "tensorflow", "jax": "keras-jax", "torch": "keras-torch"}


class Pinned:
    """An audit with assertions that fail with the offending parameters' names (``audit``: the Audit)."""

    def __init__(self, audit):
        self.audit = audit

    def assert_spares(self, *roles):
        """Fail where a parameter of ``roles`` (``norm`` for both norm roles, ``bias``, ``embedding``, ...) decays."""
        offending = self.audit.offending(*roles)
        assert not offending, f"decayed, though {', '.join(roles)} should be spared: " + ", ".join(
            f"{f.name} ({f.role}, ×{f.factor:.9g} a step)"
            for f in offending  # a decayed tensor has a factor
        )
        return self

    def assert_decays(self, *roles):
        """Fail where a parameter of ``roles`` does not decay."""
        wanted = {r for role in roles for r in (("norm_scale", "norm_shift") if role == "norm" else (role,))}
        self.audit.offending(*roles)  # an unknown role fails here, named
        missing = [f for f in self.audit.findings if f.role in wanted and not f.decays]
        assert not missing, f"not decayed, though {', '.join(roles)} should be: " + ", ".join(
            f"{f.name} ({f.role}, {f.placement})" for f in missing
        )
        return self

    def assert_no_flags(self, *flags):
        """Fail where a parameter raises one of ``flags`` (default: any flag)."""
        raised = [(f.name, flag) for f in self.audit.findings for flag in f.flags if not flags or flag in flags]
        assert not raised, "flagged: " + ", ".join(f"{name} ({flag})" for name, flag in raised)
        return self


def backend_of(optimizer):
    """The backend that audits ``optimizer``, from the module its type comes from."""
    top = type(optimizer).__module__.split(".")[0]
    if top == "keras":
        return _KERAS[os.environ.get("KERAS_BACKEND", "tensorflow")]
    if top not in _BY_MODULE:
        raise ValueError(f"decay_audit: no backend audits a {type(optimizer).__module__} optimizer; pass backend=")
    return _BY_MODULE[top]


@pytest.fixture
def decay_audit():
    """``decay_audit(*objects, backend=None)``: the Pinned audit of what you train with, the objects
    ``decaylens audit`` takes (``model, optimizer``; ``params, transformation`` for optax), backend
    found from the optimizer's module where not given. Your objects are left as they were."""

    def audit(*objects, backend=None):
        from harness.audit import audit_objects

        return Pinned(audit_objects(backend or backend_of(objects[1]), objects, "decay_audit"))

    return audit
