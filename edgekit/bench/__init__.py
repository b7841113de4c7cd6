"""edgekit bench: honest latency, memory and energy benchmarks on the device (never imports TensorFlow)."""
