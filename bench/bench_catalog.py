"""The catalog's estimates against the published figures they rest on.

    python bench/bench_catalog.py

1. Training memory per technique (knowledge/estimates.py) against each technique's
   published memory figures (techniques.yaml, memory_figures).
2. Latency estimates against the published reference latencies the device
   throughputs derive from (devices.yaml), and the Raspberry Pi 4 table of the
   PyTorch tutorial for a model that is not the reference (resnet18: 100.3 ms).
3. The plans for the issue's scenarios: top candidate, technique, memory, latency.
"""

from __future__ import annotations

from _common import ROOT  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    from knowledge import get_kb
    from knowledge.estimates import latency_ms, training_memory_gb
    from rules.engine import get_engine
    from rules.scenario import normalize

    kb = get_kb()
    f, ovh = kb.threshold("activation_memory_factor"), kb.threshold("training_overhead_gb")
    print("| technique | params | estimate (GiB) | published (GiB) | source | what |")
    print("| --- | --- | --- | --- | --- | --- |")
    for t in kb.techniques.values():
        for fig in t.memory_figures:
            est = training_memory_gb(fig.params, t.memory_bytes_per_param, f, ovh)
            print(f"| {t.id} | {fig.params / 1e9:g}B | {est:.1f} | {fig.low_gb:g}-{fig.high_gb:g} | {fig.source} | {fig.what} |")
    print()
    print("| device | model | estimate (ms) | published (ms) | source |")
    print("| --- | --- | --- | --- | --- |")
    pi = kb.devices["raspberry_pi_cpu"]
    for dev, model, published, src in [
        ("raspberry_pi_cpu", "resnet-50", 225.2, "pytorch-rpi-tutorial"),
        ("raspberry_pi_cpu", "resnet-18", 100.3, "pytorch-rpi-tutorial"),
        ("phone_cpu", "mobilenet-v3-large", 44.0, "tf-mobilenet-readme"),
        ("phone_cpu", "mobilenet-v3-small", 14.4, "tf-mobilenet-readme (Small 1.0 float, Pixel 3)"),
    ]:
        est = latency_ms(kb.models[model], kb.devices[dev])
        print(f"| {dev} | {model} | {est:.1f} | {published:g} | {src} |")
    del pi
    print()
    engine = get_engine(kb)
    scen = [
        ("24 GB GPU, text generation, 20k", dict(task="text_generation", dataset_size=20000,
                                                  compute="consumer_gpu", gpu_memory_gb=24)),
        ("12 GB GPU, text generation, 20k", dict(task="text_generation", dataset_size=20000,
                                                  compute="consumer_gpu", gpu_memory_gb=12)),
        ("4 GB laptop GPU, text generation, 5k", dict(task="text_generation", dataset_size=5000,
                                                       compute="consumer_gpu", gpu_memory_gb=4)),
        ("CPU only, text classification, 5k", dict(task="text_classification", dataset_size=5000,
                                                    compute="cpu", device_class="laptop_cpu")),
        ("Raspberry Pi 4 at 200 ms, 800 images", dict(task="image_classification", dataset_size=800, compute="cpu",
                                                      deployment="edge", device_class="raspberry_pi_cpu",
                                                      latency_ms=200)),
        ("German NER, 3k sentences, 16 GB", dict(task="ner", dataset_size=3000, language="german",
                                                 compute="consumer_gpu", gpu_memory_gb=16)),
        ("8-language ticket routing, 24 GB", dict(task="text_classification", dataset_size=40000,
                                                  language="multilingual", compute="consumer_gpu", gpu_memory_gb=24)),
    ]
    print("| scenario | top candidate | technique | training memory (GiB) | latency on the device |")
    print("| --- | --- | --- | --- | --- |")
    for name, raw in scen:
        plan = engine.consult(normalize(raw, kb), trace=False)
        c = plan["candidates"][0]
        print(f"| {name} | {c['model']} | {plan['technique']['choice']} | {c['memory_gb']} | "
              f"{c['latency_ms']:.3g} ms on {plan['device']['class']} |")


if __name__ == "__main__":
    main()
