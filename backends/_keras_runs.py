"""The Keras adapter's runs: a case shape's model, loss and optimizer, built by the adapter's helpers
(``backends.keras``), and the whole training run of the shape, one class per way Keras steps, as Keras
has a trainer per backend. The adapter picks its backend's once, at import (``backends.keras._Run``):
``TracedRun`` on TensorFlow (both Kerases), ``BatchRun`` on JAX and PyTorch.

The adapter imports this module before it defines its helpers and imports TensorFlow; the runs read
them (``adapter._model``, ``adapter.tf``, ...) only when they run.
"""

import dataclasses

from backends import _code, _layout
from backends import keras as adapter
from backends._calls import Calls, Shown
from backends.contract import Statement, Trajectory


class Run:
    """A model (a Sequential of Dense layers), its optimizer, and the whole training run of their ``shape``,
    built and recorded once per shape: ``train`` puts every variable back to its state just after it was
    built, then sets the case's initial weights and lr, so that every run of the shape starts fresh. Each
    subclass, one per way Keras steps, gives the ops the penalty is written in (``OPS``, ``sum_of``) and how
    it enters the loss (``_with_penalty``), what trains the model on the batches (``_prepare``,
    ``_trajectory``) and on ``train_code``'s statements (``namespace``, ``code_step``), how a variable is
    read (``numpy``) and the precision a run can claim (``hyperparameter_dtype``)."""

    def __init__(self, shape):
        calls = Calls(**adapter.ROOT)
        calls(f"{adapter.KERAS}.backend.set_floatx", shape.model.dtype)
        self.model = adapter._model(shape, calls)
        self.layers = self.model.layers
        loss_fn = adapter._loss(shape, calls)
        loss = self._with_penalty(shape, loss_fn, adapter._penalty(shape, self.model, self, calls), calls)
        self.optimizer = adapter._optimizer(shape, self.model, calls)
        self._prepare(shape, loss, calls)
        self._statements = calls.statements
        # (a legacy optimizer's variables are a method, and made on its first step: its run is not reused)
        slots = self.optimizer.variables() if callable(self.optimizer.variables) else self.optimizer.variables
        self._built = [(variable, self.numpy(variable)) for variable in self.model.variables + slots]

    def train(self, case, arrays):
        """The Trajectory of ``case`` on ``arrays``: every variable first put back as it was built, then
        given the case's initial weights and lr."""
        for variable, value in self._built:
            variable.assign(value)
        if case.model.init == "shared":
            self.start(case, arrays, self.layers)
        if not case.schedule.varies:
            self.optimizer.learning_rate = case.optimizer.lr
        w, b = self._trajectory(case, arrays)
        return Trajectory(
            w=w, b=b, statements=self.statements(case), hyperparameter_dtype=self.hyperparameter_dtype(case)
        )

    def statements(self, case):
        """The shape's statements as the user writes them for ``case``, and how its lr was set."""
        lr = repr(case.optimizer.lr)
        if case.schedule.varies:
            return self._statements
        shown = tuple(dataclasses.replace(s, text=s.text.replace(adapter._LR, lr)) for s in self._statements)
        return (
            *shown,
            Statement(
                "note",
                f"optimizer.learning_rate = {lr} (the optimizer is built once per case shape with "
                "learning_rate=1.0, then given each case's lr in its learning-rate variable)",
            ),
        )

    @staticmethod
    def start(case, arrays, layers):
        """Assign the case's shared initial weights to the Dense ``layers``: each kernel and bias its part of
        ``arrays``."""
        for dense, (weight, bias) in zip(layers, _layout.blocks(case, arrays.w0, arrays.b0)):
            dense.kernel.assign(weight)
            dense.bias.assign(bias)

    @classmethod
    def steps(cls, case, arrays, layers, step):
        """(w, b) of the Dense ``layers`` before training and after each ``step(xb, yb)`` over the batches
        (``_batches``), one call into Python a step."""
        rows = _layout.Rows(case, case.model.dtype)
        rows.write(0, cls.pairs(layers))
        for number, batch in enumerate(zip(*_batches(case, arrays)), start=1):
            step(*batch)
            rows.write(number, cls.pairs(layers))
        return rows.w, rows.b

    @classmethod
    def pairs(cls, layers):
        """(kernel, bias) of each of the Dense ``layers`` as they are now, as NumPy arrays."""
        return [(cls.numpy(dense.kernel), cls.numpy(dense.bias)) for dense in layers]


class TracedRun(Run):
    """TensorFlow's run (both Kerases): Keras's train step in a ``tf.GradientTape``, the penalty added to
    the loss in it, the whole run one ``tf.scan`` over the batches, traced as one graph once per shape (or,
    below ``adapter.TRACED_FROM_STEPS`` steps, run eagerly), without a call into Python per step."""

    OPS = ("tf", "tf.reduce_sum")  # the penalty as a TensorFlow user writes it: its ops, and their sum

    @staticmethod
    def sum_of(op, params):
        """Σ over the variables ``params`` of the sum of ``op`` (``square``, ``abs``) of each, in TF ops."""
        tf = adapter.tf
        return tf.add_n([tf.reduce_sum(getattr(tf, op)(p)) for p in params])

    @staticmethod
    def numpy(variable):
        """The variable's value as a NumPy array."""
        return variable.numpy()

    @staticmethod
    def namespace():
        """What ``train_code``'s statements run with beside the Keras module: ``tf``."""
        return {"tf": adapter.tf}

    @staticmethod
    def hyperparameter_dtype(case):
        """ "float32" when a float64 run applies its hyperparameters rounded to float32, else None.

        Keras casts Python-float hyperparameters with ``tf.cast`` (Keras 3: ``ops.cast``), which makes them
        float32 tensors first: momentum 0.9 becomes 0.8999999761581421 in a float64 run (Keras 3 sgd.py,
        adam.py, regularizers.L2; tf-keras sgd.py, adam.py; a legacy optimizer keeps every hyperparameter
        in a float32 variable). A user passes Python floats, so the adapter does too; this states which
        precision the run can claim: float32 as soon as any of the run's hyperparameters is not a float32
        number."""
        tf, penalty = adapter.tf, case.penalty
        values = [case.optimizer.lr]
        values += [v for v in adapter._hyperparameters(case.optimizer).values() if isinstance(v, float)]
        values += [penalty.strength] if penalty.in_framework else []
        if case.model.dtype == "float64" and any(float(tf.cast(v, tf.float64)) != v for v in values):
            return "float32"
        return None

    @staticmethod
    def _step(model, optimizer, loss):
        """Keras's train step, ``step(x, y)``: the gradient of ``loss(y, model(x))``, taken in a
        ``tf.GradientTape``, given to ``optimizer.apply_gradients``."""

        def step(xb, yb):
            with adapter.tf.GradientTape() as tape:
                value = loss(yb, model(xb))
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))

        return step

    @classmethod
    def code_step(cls, namespace, loss_fn, statements):
        """The train step of the ``model`` and ``optimizer`` in ``namespace``, the penalty ``statements``
        (``loss = loss + ...``) run in its tape (``_code.penalized``); eager, but traced for an
        ``adapter.TRACED_ALWAYS`` optimizer, as train's run is."""
        add = _code.penalized(statements, namespace)
        step = cls._step(namespace["model"], namespace["optimizer"], lambda y, pred: add(loss_fn(y, pred)))
        if type(namespace["optimizer"]).__name__ in [adapter._CLASSES[name] for name in adapter.TRACED_ALWAYS]:
            step = adapter.tf.function(step, autograph=False)
        return step

    @staticmethod
    def _with_penalty(shape, loss_fn, term, calls):
        """(y, pred) -> the loss, the penalty ``term`` added to it in the tape: ``loss = loss + term``."""
        if term is None:
            return loss_fn
        calls.penalty(f"loss = loss + {term.text}")
        return lambda y, pred: loss_fn(y, pred) + term.value()

    def _prepare(self, shape, loss, calls):
        """``self.scan(xs, ys)``, the (w, b) after every step: the concrete function of the run's trace, or
        the eager function of a short run."""
        tf = adapter.tf
        step = self._step(self.model, self.optimizer, loss)

        def scanned(_, batch):
            step(*batch)
            return self._parameters(shape)

        def run(xs, ys):
            return tf.scan(scanned, (xs, ys), initializer=self._parameters(shape), parallel_iterations=1)

        if shape.steps < adapter.TRACED_FROM_STEPS and shape.optimizer.name not in adapter.TRACED_ALWAYS:
            self.scan = run  # eagerly, op by op: the same code, no graph
            return
        # Traced here, once (AutoGraph has nothing to convert: the step has no Python control
        # flow); calling the concrete function skips tf.function's retracing checks.
        # jit_compile=True was measured slower on the whole: XLA runs a d2l case in 0.5 ms
        # instead of about 12 ms, but compiles each shape for about 0.2 s.
        batches = (shape.steps, shape.train.batch_size)
        self.scan = tf.function(run, autograph=False).get_concrete_function(
            tf.TensorSpec((*batches, shape.data.dim), shape.model.dtype),
            tf.TensorSpec((*batches, 1), shape.model.dtype),
        )

    def _parameters(self, shape):
        """(w, b) of the Dense layers as TensorFlow tensors, inside the run (``_layout.flat``)."""
        pairs = [(dense.kernel, dense.bias) for dense in self.layers]
        return _layout.flat(shape, pairs, xp=adapter.tf.experimental.numpy)

    def _trajectory(self, case, arrays):
        rows = _layout.Rows(case, case.model.dtype)
        rows.write(0, self.pairs(self.layers))
        after = self.scan(*map(adapter.tf.constant, _batches(case, arrays)))
        rows.w[1:], rows.b[1:] = (parameters.numpy() for parameters in after)
        return rows.w, rows.b


class BatchRun(Run):
    """Keras 3's run on JAX and PyTorch: ``model.train_on_batch``, Keras's backend-neutral train step, once
    a batch, the model compiled with the loss plus the penalty."""

    OPS = ("keras.ops", "keras.ops.sum")  # the penalty in Keras 3's backend-neutral ops, and their sum

    @staticmethod
    def sum_of(op, params):
        """Σ over the variables ``params`` of the sum of ``op`` (``square``, ``abs``) of each, in ``keras.ops``."""
        ops = adapter.keras.ops
        return sum(ops.sum(getattr(ops, op)(p)) for p in params)

    @staticmethod
    def numpy(variable):
        """The variable's value as a NumPy array, by ``convert_to_numpy`` (which detaches a PyTorch tensor)."""
        return adapter.keras.ops.convert_to_numpy(variable.value)

    @staticmethod
    def namespace():
        """What ``train_code``'s statements run with beside the Keras module: nothing."""
        return {}

    @staticmethod
    def hyperparameter_dtype(case):
        """ "float32" for a float64 run, else None: Keras 3's type promotion turns float64 into float32 off
        TensorFlow (keras/src/backend/common/dtypes.py:240, BIT64_TO_BIT32_DTYPE, "aligned with JAX's
        default behavior"), so that ``ops.mean`` reduces MeanSquaredError's errors in float32
        (backend/jax/numpy.py:231) and PyTorch's ``ops.matmul`` multiplies a float64 Dense layer in
        float32 (backend/torch/numpy.py:140)."""
        return "float32" if case.model.dtype == "float64" else None

    @staticmethod
    def code_step(namespace, loss_fn, statements):
        """``model.train_on_batch`` of the ``model`` in ``namespace``, compiled with its ``optimizer`` and the
        loss plus each ``penalty`` the penalty ``statements`` define (``penalty = lambda: ...``), as train's is."""
        terms = []
        for statement in statements:
            if statement.kind == "penalty":
                exec(compile(statement.text, "<penalty>", "exec"), namespace)
                terms.append(namespace["penalty"])
        total = (lambda y, pred: sum((term() for term in terms), loss_fn(y, pred))) if terms else loss_fn
        namespace["model"].compile(optimizer=namespace["optimizer"], loss=total)
        return namespace["model"].train_on_batch

    @staticmethod
    def _with_penalty(shape, loss_fn, term, calls):
        """The loss ``model.compile`` is given: ``loss(y, pred) + penalty()``, the ``term`` recorded as
        ``penalty = lambda: term``; else ``loss``, to which ``train_on_batch`` adds the layers' regularization
        losses itself."""
        if shape.penalty.kind == "regularizer":
            calls.note("(train_on_batch adds sum(model.losses) to the loss)")
        elif term is not None:
            calls.penalty(f"penalty = lambda: {term.text}")
            return Shown(lambda y, pred: loss_fn(y, pred) + term.value(), "lambda y, pred: loss(y, pred) + penalty()")
        return Shown(loss_fn, "loss")

    def _prepare(self, shape, loss, calls):
        calls("model.compile", optimizer=self.optimizer, loss=loss)
        calls.note("model.train_on_batch(x, y) for each batch")

    def _trajectory(self, case, arrays):
        return self.steps(case, arrays, self.layers, self.model.train_on_batch)


def _batches(case, arrays):
    """Every step's batch, gathered once: inputs (steps, batch size, dim), targets (steps, batch size, 1)."""
    order = arrays.batch_order()
    return arrays.x_train[order].astype(case.model.dtype), arrays.y_train[order][..., None].astype(case.model.dtype)
