"""What keeps a Lambda's first request cheap (measured in bench/coldstart.py, docs/benchmarks.md), held by
tests so a change cannot quietly undo it: ``import app`` loads neither pydantic nor any AWS SDK, a catalogue
request loads botocore but not boto3, only the catalogue's models, and no plugin lookup of pydantic."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import app
after_import = sorted(m for m in ("pydantic", "boto3", "botocore", "stripe") if m in sys.modules)
from chalicelib.clinics import catalog_models
catalog_models.CatalogClinicsQuery.model_validate({"city": "Kaliningrad"})
from chalicelib.core import db
db.to_item({"a": 1})
from chalicelib.core.settings import get_settings
get_settings()
def ran(name):  # a module named through lazy_module is in sys.modules, but its body has not run until used
    return name in sys.modules and type(sys.modules[name]).__name__ != "_LazyModule"
print(json.dumps({"after_import": after_import,
                  "loaded": sorted(m for m in ("boto3", "importlib.metadata", "chalicelib.clinics.models",
                                               "chalicelib.identity.models") if ran(m))}))
"""


def test_a_fresh_process_loads_only_what_the_first_catalogue_request_needs():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYDANTIC"))}
    env.update({"STAGE": "test", "TABLE_NAME": "cold-parts", "AWS_REGION": "eu-central-1"})
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["after_import"] == [], seen
    assert seen["loaded"] == [], seen  # no boto3, no plugin lookup, not every model of clinics and identity


def test_pydantics_plugin_loader_still_has_the_shape_the_shortcut_relies_on():
    """chalicelib/core/pydantic_plugins.py stands in for pydantic's loader when plugins are disabled. The real
    loader, read from pydantic's own file, must still answer no plugins then, by the same name."""
    import pydantic

    import chalicelib.core.pydantic_plugins  # noqa: F401  (what every model module imports first, via core.model)

    path = Path(pydantic.__file__).parent / "plugin" / "_loader.py"
    spec = importlib.util.spec_from_file_location("real_pydantic_plugin_loader", path)
    real = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real)
    assert os.environ.get("PYDANTIC_DISABLE_PLUGINS") == "__all__"
    assert tuple(real.get_plugins()) == ()
    schema_validator = (Path(pydantic.__file__).parent / "plugin" / "_schema_validator.py").read_text()
    assert "from ._loader import get_plugins" in schema_validator
