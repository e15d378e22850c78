"""The data plane of the tests: sample model servers on loopback and the traffic that drives them.

On the local control plane no container runs, so model servers are local
processes and the load generator plays the gateway, sending traffic in the
proportions the router's state says.

The sample server lives in ``examples/model-server`` and is not an installed
package; its synthetic market is imported from there so that the load
generator's realised returns come from the same world the model was built on.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_SERVER_DIR = REPO_ROOT / "examples" / "model-server"
DEFAULT_REFERENCE = MODEL_SERVER_DIR / "data" / "reference.json"
GOLDEN_INPUTS = MODEL_SERVER_DIR / "data" / "golden.json"

if str(MODEL_SERVER_DIR) not in sys.path:
    sys.path.append(str(MODEL_SERVER_DIR))
