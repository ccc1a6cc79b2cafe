"""A small generated text corpus as a local tensorflow-datasets builder, for language models offline.

Sentences come from a tiny grammar (determiner, adjective, noun, verb, preposition, object),
drawn by numpy from a fixed seed on this machine, never downloaded. Its supervised keys are
(text, text) as lm1b's, so the same tokenisation into next-token windows applies
(data/preprocess.py): language-model workloads run end to end in tests and smoke runs with
`dataset: {name: synthetic_text, tokenizer: bytes, sequence_length: 32}`. The grammar makes the
next token predictable in part, so a model's cross-entropy falls well below the uniform one.
"""

import numpy as np
import tensorflow_datasets as tfds

TRAIN_SENTENCES = 4_000
VALIDATION_SENTENCES = 400
GENERATOR_SEED = 7

DETERMINERS = ["the", "a", "every", "no"]
ADJECTIVES = ["small", "red", "quiet", "old", "quick"]
NOUNS = ["cat", "dog", "bird", "child", "farmer", "robot"]
VERBS = ["sees", "likes", "follows", "paints", "hears"]
PREPOSITIONS = ["near", "under", "behind"]
PLACES = ["the house", "the river", "a tree", "the market"]


def sentences(count: int, seed: int) -> list[str]:
    """`count` sentences of the grammar, the same for the same seed."""
    rng = np.random.default_rng(seed)

    def pick(words):
        return words[rng.integers(len(words))]

    out = []
    for _ in range(count):
        subject = f"{pick(DETERMINERS)} {pick(ADJECTIVES) + ' ' if rng.random() < 0.5 else ''}{pick(NOUNS)}"
        sentence = f"{subject} {pick(VERBS)} {pick(DETERMINERS)} {pick(NOUNS)}"
        if rng.random() < 0.5:
            sentence += f" {pick(PREPOSITIONS)} {pick(PLACES)}"
        out.append(sentence + " .")
    return out


class SyntheticText(tfds.core.GeneratorBasedBuilder):
    """Sentences of a tiny English-like grammar, generated locally."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": f"{TRAIN_SENTENCES} train and {VALIDATION_SENTENCES} validation sentences, seed {GENERATOR_SEED}."
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Sentences of a tiny grammar generated offline, for language-model smoke runs.",
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            supervised_keys=("text", "text"),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(sentences(TRAIN_SENTENCES, GENERATOR_SEED)),
            "validation": self._generate_examples(sentences(VALIDATION_SENTENCES, GENERATOR_SEED + 1)),
        }

    def _generate_examples(self, texts):
        for index, text in enumerate(texts):
            yield index, {"text": text}
