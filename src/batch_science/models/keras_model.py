"""A user's Keras model, named by import path, trained by the engine like the native models.

`model: {keras: "package.module:function", **keywords}` names a function that returns an
uncompiled `keras.Model` (functional, sequential or subclassed) whose outputs are logits (no final
softmax); the other keys of the block are its keyword arguments. `KerasModel` presents the
interface of models/trial_axis.py (`init`, `apply`, `flops_per_example`), so the engine trains it
with the trial semantics of every model:

- Initialisation: `init(seed, ...)` calls the function once per trial with Keras's random seed set
  to the trial's seed (`keras.utils.set_random_seed`, the Python and NumPy global generators put
  back afterwards), so every Keras initialiser draws from the trial's own seed. The weights are
  always drawn in float32 (the default dtype policy), so both precisions start from the same point.
- Training: `apply` runs the model through `Model.stateless_call` on weights passed in as
  tensors; the model's own variables are only a template of shapes. Trials share a graph along
  a leading trial axis with `tf.vectorized_map` when every layer's ops can be vectorised
  (probed once, in `build_for`), else with a loop over the static trial axis (one model call per
  trial in the graph, at most LOOP_MAX_TRIALS). Either way each trial computes exactly what it
  would alone.
- Non-trainable state is explicit: the weights a trial carries are the model's trainable variables
  followed by its non-trainable ones (batch-norm moving statistics, frozen layers); the latter
  get a zero gradient (`tf.stop_gradient`), so the optimizer leaves them at their initial values, and
  the updates a training call makes to them are dropped. Batch norm trains on each batch's own
  statistics and evaluates with population statistics, as the paper models do (precise BN,
  models/paper.py): `batch_norm_statistics` runs the model in training mode on the engine's fixed
  training examples with every BatchNormalization's momentum set to 0, so the moving statistics it
  returns are exactly that sample's, and evaluation normalises with them. Keras's moving averages
  are not used.
- Randomness in training (dropout, noise layers): every Keras SeedGenerator's state is set from
  the trial's seed, the step and the generator's position, so the masks depend on (trial, step)
  only, not on which trials share a graph. Callers that pass no seeds (evaluation) use state 0.
"""

from __future__ import annotations

import random

import numpy as np

from batch_science.imports import import_object

# A SeedGenerator advances its state by [0, 1] per draw within one call; generators are this far apart.
SEED_STRIDE = 1024
# Graph copies of the model when its layers cannot be vectorised: a loop this long still compiles in seconds.
LOOP_MAX_TRIALS = 8
SEED_STATE = "seed_generator_state"  # the name Keras gives a SeedGenerator's variable


class KerasModel:
    """The engine's model interface over a Keras model factory (see the module docstring)."""

    keyed_randomness = True  # the engine passes each trial's seed and step to apply() in training

    def __init__(self, factory_path: str, keywords: dict | None = None, search_dir: str | None = None):
        self.factory_path, self.keywords, self.search_dir = factory_path, dict(keywords or {}), search_dir
        self.factory = import_object(factory_path, search_dir)
        if not callable(self.factory):
            raise ValueError(f"'{factory_path}': not a function")
        self.vectorizes: bool | None = None  # decided by the probe in init()
        self.templates: dict = {}  # dtype name -> a built model whose variables give shapes and order
        self.initial: dict = {}  # (seed, input shape, classes) -> one trial's weights
        self._flops_cache: dict = {}
        probe = self.built_model(0, "float32", None)
        if any(_is_batch_norm(layer) for layer in _layers(probe)):
            self.batch_norm_statistics = self._batch_norm_statistics

    @property
    def max_trials_per_graph(self) -> int | None:
        return None if self.vectorizes is not False else LOOP_MAX_TRIALS

    # -- building ------------------------------------------------------------------------------
    def built_model(self, seed: int, dtype: str, input_shape):
        """A fresh model from the factory, its initialisers seeded with `seed`, layers in `dtype`,
        built for inputs of `input_shape` (None: as the factory built it)."""
        import keras

        python_state, numpy_state = random.getstate(), np.random.get_state()
        policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
        try:
            keras.utils.set_random_seed(int(seed))
            keras.config.set_dtype_policy(dtype)
            keras.config.set_floatx(dtype)  # keras.Input's dtype: the inputs are not cast to float32
            try:
                model = self.factory(**self.keywords)
            except Exception as error:  # the user's code: any failure is reported as the factory's
                raise ValueError(f"'{self.factory_path}' raised {type(error).__name__}: {error}") from None
            if not isinstance(model, keras.Model):
                raise ValueError(f"'{self.factory_path}' returned {type(model).__name__}, not a keras.Model")
            if input_shape is not None and not model.built:
                model(np.zeros((1, *input_shape), dtype), training=False)
        finally:
            keras.config.set_dtype_policy(policy)
            keras.config.set_floatx(floatx)
            random.setstate(python_state)
            np.random.set_state(numpy_state)
        return model

    def template(self, dtype: str, input_shape):
        if dtype not in self.templates:
            self.templates[dtype] = self.built_model(0, dtype, input_shape)
        return self.templates[dtype]

    def check_output(self, input_shape, num_classes: int) -> None:
        """ValueError unless the model maps [batch, *input_shape] to logits [batch, num_classes]."""
        import tensorflow as tf

        model = self.template("float32", input_shape)
        try:
            shape = model(tf.zeros((2, *input_shape)), training=False).shape
        except Exception as error:
            raise ValueError(
                f"'{self.factory_path}': the model does not take inputs of shape {tuple(input_shape)} "
                f"({type(error).__name__}: {' '.join(str(error).split())[:200]})"
            ) from None
        if tuple(shape) != (2, num_classes):
            raise ValueError(
                f"'{self.factory_path}': the model's output has shape {tuple(shape[1:])} per example, "
                f"the dataset has {num_classes} classes (expected ({num_classes},), logits)"
            )

    # -- the trial_axis.py interface -----------------------------------------------------------
    def build_for(self, input_shape, num_classes: int) -> None:
        """Check the model on these inputs and learn whether its layers vectorise over trials
        (which sets max_trials_per_graph); the engine calls it before it sizes its graphs."""
        if self.vectorizes is None:
            self.check_output(input_shape, num_classes)
            self.vectorizes = self._probe_vectorization(tuple(input_shape))

    def init(self, seed: int, input_shape, num_classes: int) -> list[np.ndarray]:
        key = (int(seed), tuple(input_shape), int(num_classes))
        if key not in self.initial:
            self.build_for(input_shape, num_classes)
            model = self.built_model(seed, "float32", input_shape)
            self.initial = {key: [np.asarray(v.numpy(), np.float64) for v in _carried(model)]}
        return [w.copy() for w in self.initial[key]]

    def apply(self, weights, x, shared: bool, statistics=None, seeds=None, steps=None):
        """Logits [trials, batch, classes]; x [batch, ...] when shared, else [trials, batch, ...].

        `statistics` (from batch_norm_statistics) replaces the batch-norm moving statistics; `seeds`
        and `steps` ([trials] each) key the training-time randomness."""
        import tensorflow as tf

        model = self.template(x.dtype.name, x.shape[2:] if not shared else x.shape[1:])
        n_trials = weights[0].shape[0]
        seeds = tf.zeros([n_trials], tf.int64) if seeds is None else tf.cast(seeds, tf.int64)
        steps = tf.zeros([n_trials], tf.int64) if steps is None else tf.cast(steps, tf.int64)
        if statistics is not None:
            weights = self._with_statistics(model, weights, statistics)

        n_trainable = len(model.trainable_variables)

        def one_trial(trial_weights, x, seed, step):
            trainable, non_trainable = self._call_values(model, trial_weights, seed, step)
            logits, _ = model.stateless_call(trainable, non_trainable, x, training=not shared)
            # Zero times the non-trainable weights: their gradient is zero, not none (in training, batch
            # norm reads no moving statistics), and every trainer updates every weight, here by nothing.
            unused = [tf.reduce_sum(w) for w in trial_weights[n_trainable:]]
            return tf.cast(logits, x.dtype) + (0 * tf.add_n(unused) if unused else 0)

        if shared:
            return self._per_trial(lambda w, s, t: one_trial(w, x, s, t), (list(weights), seeds, steps))
        return self._per_trial(lambda w, xs, s, t: one_trial(w, xs, s, t), (list(weights), x, seeds, steps))

    def flops_per_example(self, input_shape, num_classes) -> int:
        """The forward pass, from XLA's cost analysis of one example (the engine's grouping uses it)."""
        import tensorflow as tf

        key = (tuple(input_shape), int(num_classes))
        if key not in self._flops_cache:
            model = self.template("float32", input_shape)
            function = tf.function(lambda x: model(x, training=False), jit_compile=True)
            try:
                analysis = function.experimental_get_compiler_ir(tf.zeros((1, *input_shape)))(stage="hlo_flops")
                flops = int(analysis) if not isinstance(analysis, dict) else int(analysis.get("flops", 0))
            except Exception:  # cost analysis is not available everywhere: count dense multiply-adds
                flops = 0
            if flops <= 0:
                flops = 2 * sum(int(np.prod(v.shape)) for v in model.trainable_variables)
            self._flops_cache[key] = flops
        return self._flops_cache[key]

    # -- pieces ----------------------------------------------------------------------------------
    def _per_trial(self, function, per_trial_args):
        """function(*one trial's args) for every trial, stacked: vectorised, or a static loop."""
        import tensorflow as tf

        n_trials = per_trial_args[1].shape[0]
        if self.vectorizes and n_trials > 1:  # (of one trial, pfor's gradients lose their static trial axis)
            return tf.vectorized_map(lambda args: function(*args), per_trial_args, fallback_to_while_loop=False)
        outputs = []
        for trial in range(n_trials):
            args = [[w[trial] for w in per_trial_args[0]], *(a[trial] for a in per_trial_args[1:])]
            outputs.append(function(*args))
        return tf.nest.map_structure(lambda *per_trial: tf.stack(per_trial), *outputs)

    def _call_values(self, model, trial_weights, seed, step):
        """The (trainable, non-trainable) values of one trial's stateless_call: its weights, the
        non-trainable ones without gradient, and every SeedGenerator's state from (seed, step)."""
        import tensorflow as tf

        n_trainable = len(model.trainable_variables)
        trainable, carried = list(trial_weights[:n_trainable]), iter(trial_weights[n_trainable:])
        non_trainable, generator = [], 0
        for variable in model.non_trainable_variables:
            if _is_seed_state(variable):
                offset = (step * len(_seed_states(model)) + generator) * SEED_STRIDE
                non_trainable.append(tf.cast(tf.stack([seed, offset]), variable.dtype))
                generator += 1
            else:
                non_trainable.append(tf.stop_gradient(next(carried)))
        return trainable, non_trainable

    def _moving_statistics_positions(self, model) -> list[int]:
        """Positions, in the carried weights, of every batch-norm layer's moving mean and variance."""
        carried = _carried(model)
        return [
            next(i for i, v in enumerate(carried) if v is variable)
            for layer in _layers(model)
            if _is_batch_norm(layer)
            for variable in (layer.moving_mean, layer.moving_variance)
        ]

    def _with_statistics(self, model, weights, statistics):
        positions = self._moving_statistics_positions(model)
        weights = list(weights)
        for position, value in zip(positions, statistics):
            weights[position] = value
        return weights

    def _batch_norm_statistics(self, weights, x):
        """Each trial's population statistics of every batch-norm layer over the examples x (shared):
        a training-mode call with momentum 0, whose updated moving statistics are the sample's."""
        import tensorflow as tf

        model = self.template(x.dtype.name, x.shape[1:])
        positions = self._moving_statistics_positions(model)
        n_trainable = len(model.trainable_variables)
        layers = [layer for layer in _layers(model) if _is_batch_norm(layer)]
        momenta = [layer.momentum for layer in layers]

        def one_trial(trial_weights, seed, step):
            trainable, non_trainable = self._call_values(model, trial_weights, seed, step)
            _, updated = model.stateless_call(trainable, non_trainable, x, training=True)
            carried = [v for v, variable in zip(updated, model.non_trainable_variables) if not _is_seed_state(variable)]
            return [tf.cast(carried[p - n_trainable], x.dtype) for p in positions]

        n_trials = weights[0].shape[0]
        zeros = tf.zeros([n_trials], tf.int64)
        try:
            for layer in layers:  # read when the call is traced
                layer.momentum = 0.0
            return self._per_trial(one_trial, (list(weights), zeros, zeros))
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum

    def _probe_vectorization(self, input_shape) -> bool:
        """Whether a training step of two trials traces under tf.vectorized_map without falling back."""
        import tensorflow as tf

        weights = [np.stack([w, w]) for w in self.init_unprobed(input_shape)]
        specs = [tf.TensorSpec(w.shape, tf.float32) for w in weights]
        self.vectorizes = True

        def step(weights, x):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = tf.reduce_sum(self.apply(weights, x, shared=False, seeds=tf.constant([0, 1]), steps=[0, 0]))
            return tape.gradient(loss, weights)

        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("FATAL")  # pfor logs a page per op it cannot convert; the loop is the answer to it
        try:
            tf.function(step, autograph=False).get_concrete_function(
                specs, tf.TensorSpec((2, 2, *input_shape), tf.float32)
            )
            return True
        except Exception:  # any op without a vectorised form
            return False
        finally:
            logger.setLevel(level)
            self.vectorizes = None

    def init_unprobed(self, input_shape) -> list[np.ndarray]:
        return [np.asarray(v.numpy(), np.float32) for v in _carried(self.template("float32", input_shape))]


def _layers(model) -> list:
    """Every layer of the model, nested ones too, in order."""
    found = []
    for layer in getattr(model, "layers", []):
        found += [layer, *_layers(layer)]
    return found


def _is_batch_norm(layer) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def _is_seed_state(variable) -> bool:
    return variable.path.rsplit("/", 1)[-1] == SEED_STATE


def _seed_states(model) -> list:
    return [v for v in model.non_trainable_variables if _is_seed_state(v)]


def _carried(model) -> list:
    """The variables a trial carries: trainable ones, then non-trainable ones except seed states."""
    return list(model.trainable_variables) + [v for v in model.non_trainable_variables if not _is_seed_state(v)]
