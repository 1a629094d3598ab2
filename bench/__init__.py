"""Benchmarks of the plugin's cost inside the LiteLLM proxy (not part of the test suite); see README.md."""

import os

# No internet here: litellm must use its bundled price map, never try to download it (every
# benchmark imports this package first, and the proxies it starts inherit the setting).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
