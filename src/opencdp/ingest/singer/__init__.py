"""The Singer protocol: a target that lands taps' output in the raw zone, and tap runners."""
