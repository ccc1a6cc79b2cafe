"""config/paper.yaml: the paper's studies, goals and search spaces; its dry run lists the jobs the design implies."""

import re
from pathlib import Path

import pytest

from batch_science.config import shard_count, studies
from batch_science.models.registry import get_model
from batch_science.release.layout import OPTIMIZER_NAMES
from batch_science.tuning.study_config import load_config

PAPER_CONFIG = Path(__file__).resolve().parents[2] / "config" / "paper.yaml"
POW2 = lambda low, high: [2**i for i in range(low, high + 1)]  # noqa: E731

# The release's summary table (google-research batch_science/README.md): study folder ->
# optimizer -> batch sizes, transcribed independently of config/paper.yaml.
RELEASE = {
    "cifar_10/resnet_8": {"nesterov_momentum": POW2(1, 13), "sgd": POW2(1, 13)},
    "fashion_mnist/simple_cnn_base": {"nesterov_momentum": [2, 8, 32, 128, 512, 2048, 8192, 32768, 55000]},
    "imagenet/resnet_50": {"nesterov_momentum": POW2(6, 16)},
    "imagenet/vgg_11": {"nesterov_momentum": [32, 64] + POW2(8, 16)},
    "imagenet_subsets/imagenet_half_images/resnet_50": {"nesterov_momentum": POW2(6, 15)},
    "imagenet_subsets/imagenet_half_classes/resnet_50": {"nesterov_momentum": POW2(6, 15)},
    "lm1b/lstm": {"nesterov_momentum": [16, 64, 256, 1024, 4096, 16384, 32768]},
    "lm1b/transformer_base": {"nesterov_momentum": POW2(4, 15)},
    "lm1b/transformer_narrow_and_shallow": {"nesterov_momentum": POW2(4, 15)},
    "lm1b/transformer_shallow": {
        "momentum": [32, 128, 512, 2048, 8192, 32768],
        "nesterov_momentum": POW2(4, 15),
        "sgd": [32, 128, 512, 2048, 8192],
    },
    "lm1b/transformer_wide": {"nesterov_momentum": POW2(4, 15)},
    **{
        f"mnist/fc_{name}": {"sgd": POW2(0, 15) + [55000]}
        for name in [
            "1024",
            "1024_1024",
            "1024_1024_1024",
            "128_128_128",
            "2048_2048_2048",
            "256_256_256",
            "512_512_512",
            "64_64_64",
        ]
    },
    "mnist/simple_cnn_base": {
        "momentum": POW2(0, 15) + [55000],
        "nesterov_momentum": [1, 2, 8, 32, 128, 512, 2048, 8192, 32768, 55000],
        "sgd": POW2(0, 15) + [55000],
    },
    "mnist/simple_cnn_narrow": {"sgd": POW2(0, 15) + [55000]},
    "mnist/simple_cnn_wide": {"sgd": POW2(0, 15)},
    "mnist_subsets/mnist_6875/simple_cnn_base": {"nesterov_momentum": POW2(0, 12) + [6875]},
    "mnist_subsets/mnist_13750/simple_cnn_base": {"nesterov_momentum": POW2(0, 13) + [13750]},
    "mnist_subsets/mnist_27500/simple_cnn_base": {"nesterov_momentum": POW2(0, 14) + [27500]},
    "mnist_subsets/mnist_55000/simple_cnn_base": {"nesterov_momentum": POW2(0, 15) + [55000]},
}
DATASET_FOLDERS = {
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
    "cifar10": "cifar_10",
    "imagenet2012": "imagenet",
    "lm1b": "lm1b",
}
FIGURE_1_GOALS = {
    "mnist/simple_cnn_base": 0.01,
    "fashion_mnist/simple_cnn_base": 0.1,
    "cifar_10/resnet_8": 0.3,
    "imagenet/resnet_50": 0.25,
    "imagenet/vgg_11": 0.35,
    "lm1b/transformer_base": 3.9,
    "lm1b/lstm": 3.9,
}


@pytest.fixture(scope="module")
def paper():
    return load_config(PAPER_CONFIG)


def release_folder(name: str, workload: dict) -> str:
    """The release study folder a config workload reproduces, from its dataset and name."""
    dataset = workload["dataset"]
    model = re.sub(
        r"^(mnist_\d+|mnist|fashion_mnist|cifar10|imagenet_half_images|imagenet_half_classes|imagenet|lm1b)_", "", name
    )
    model = re.sub(r"_(nesterov|momentum|sgd)$", "", model)
    if dataset.get("train_examples"):
        return f"mnist_subsets/mnist_{dataset['train_examples']}/{model}"
    if dataset.get("classes") == 500:
        return f"imagenet_subsets/imagenet_half_classes/{model}"
    if dataset.get("train_fraction") == 0.5:
        return f"imagenet_subsets/imagenet_half_images/{model}"
    return f"{DATASET_FOLDERS[dataset['name']]}/{model}"


def test_paper_config_has_exactly_the_release_studies_it_can_express(paper):
    ours = {}
    for name, workload in paper["workloads"].items():
        for optimizer in workload["optimizers"]:
            key = (release_folder(name, workload), OPTIMIZER_NAMES[optimizer])
            assert key not in ours, f"{name}: study folder {key} repeated"
            ours[key] = sorted(workload["batch_sizes"])
    expected = {
        (folder, optimizer): sorted(sizes)
        for folder, by_optimizer in RELEASE.items()
        for optimizer, sizes in by_optimizer.items()
    }
    assert ours == expected
    assert len(studies(paper)) == sum(len(sizes) for sizes in expected.values()) == 418


def test_goals_models_and_search_spaces_follow_the_paper(paper):
    for name, workload in paper["workloads"].items():
        folder = release_folder(name, workload)
        if folder in FIGURE_1_GOALS:
            assert workload["target"]["value"] == FIGURE_1_GOALS[folder], name
        get_model(workload["model"])  # every model builds from its knobs
    nesterov = paper["search_spaces"]["nesterov"]
    assert nesterov["learning_rate"] == {"min": 1e-4, "max": 10.0, "scale": "log"}
    assert nesterov["momentum"] == {"min": 0.9, "max": 0.9999, "scale": "reverse_log"}
    assert nesterov["end_factor"] == {"min": 1e-4, "max": 0.1, "scale": "log"}
    resnet = paper["workloads"]["imagenet_resnet_50"]
    assert resnet["search_space"]["label_smoothing"] == {"values": [0.0, 0.01, 0.1]}
    from batch_science.config import steps_for

    assert steps_for(resnet["step_budget"], 256) == 600000  # the study.json example: train_steps 600000 at batch 256


def test_every_dataset_is_a_tensorflow_datasets_builder(paper):
    tfds = pytest.importorskip("tensorflow_datasets")
    for workload in paper["workloads"].values():
        assert tfds.builder_cls(workload["dataset"]["name"])


@pytest.mark.slow
def test_dry_run_lists_a_tune_job_per_shard_of_every_study(paper, tmp_path):
    from conftest import run_snakemake

    result = run_snakemake(tmp_path, "-n", "--configfile", str(PAPER_CONFIG), "--quiet", "rules")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert shard_count(paper, "lm1b_lstm") == 5  # 50 trials, as the paper's LSTM
    assert {shard_count(paper, name) for name in paper["workloads"] if name != "lm1b_lstm"} == {10}
    assert int(counts["tune"]) == 418 * 10 - 7 * 5 == 4145
    assert int(counts["prepare_data"]) == 5  # mnist, fashion_mnist, cifar10, imagenet2012, lm1b
    assert int(counts["plot_metaparameters"]) == sum(len(w["optimizers"]) for w in paper["workloads"].values())
    # Streamed ImageNet workloads turn their noise-scale run off; every other workload has one.
    in_memory = [name for name, w in paper["workloads"].items() if not w["dataset"].get("streaming")]
    assert int(counts["noise_scale"]) == len(in_memory) == len(paper["workloads"]) - 4
