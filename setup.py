"""Maps the design card's top-level folders into the single `tierwise` import root.

`constructs/`, `stacks/` and `policies/` stay at the top of the repository, where forkers look for
them, but install as `tierwise.constructs`, `tierwise.stacks` and `tierwise.policies`. A top-level
importable `constructs` package would shadow the jsii `constructs` library that cdktn is built on.
setuptools' declarative config cannot map several roots *and* discover sub-packages, so we walk them.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {
    "tierwise": "tierwise_core",
    "tierwise.constructs": "constructs",
    "tierwise.stacks": "stacks",
    "tierwise.policies": "policies",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, folder in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    for sub in find_namespace_packages(where=folder, exclude=["*__pycache__*"]):
        packages.append(f"{name}.{sub}")

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: ["*.yaml", "*.json", "*.md", "*.txt", "NOTICE", "LICENSE", "*.tpl", "*.go"] for name in packages},
    include_package_data=True,
)
