"""A broken plugin stops start-up with a PluginError that names the plugin and what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import ProcedureSpec
from gateway.connector import AgencyKind
from gateway.errors import PluginError
from gateway.hooks import hookimpl
from gateway.plugin_manager import UnmarkedHookWarning, build_plugin_manager, collect, load_registry
from plugins.police.connector import PoliceConnector, PoliceSettings
from tests.builtin import BUILTIN_PLUGINS, builtin_registry

# The agency plugins that ship with the gateway, registered through the entry-point group like any other.
BUILTIN = BUILTIN_PLUGINS


def kind(name: str) -> AgencyKind:
    return AgencyKind(name=name, title=name, protocol="rest", settings_model=PoliceSettings, connector=PoliceConnector)


def proc(code: str, agency_kind: str = "police") -> ProcedureSpec:
    return ProcedureSpec(code=code, name="Thủ tục thử", sector="Thử", agency_kind=agency_kind, processing_days=1)


def plugin(**hooks: Any) -> object:
    """A plugin object whose hook implementations return the given values (or raise them)."""

    class Plugin:
        pass

    for hook_name, value in hooks.items():

        def impl(value: Any = value) -> Any:
            if isinstance(value, Exception):
                raise value
            return value

        impl.__name__ = hook_name
        setattr(Plugin, hook_name, staticmethod(hookimpl(impl)))
    return Plugin()


def load(**plugins: object) -> None:
    collect(build_plugin_manager(extra=dict(plugins), only=BUILTIN_PLUGINS))


def test_builtin_plugins_load() -> None:
    reg = builtin_registry()
    assert set(reg.agency_kinds) == set(BUILTIN)
    assert set(reg.procedures) >= {"1.004194", "1.004203"}
    for name in BUILTIN:
        assert reg.plugins[name] == f"plugins.{name}.plugin"


def test_a_good_extra_plugin_adds_its_kind_and_procedures() -> None:
    reg = builtin_registry(
        extra={
            "permits-plugin": plugin(
                register_agency_kinds=[kind("permits")], register_procedures=[proc("1.009999", "permits")]
            )
        }
    )
    assert set(reg.agency_kinds) == {*BUILTIN, "permits"}
    assert reg.procedures["1.009999"].agency_kind == "permits"
    assert reg.plugins["permits-plugin"]


def test_unknown_hook_name() -> None:
    with pytest.raises(PluginError) as err:
        load(typo=plugin(register_agency_kind=[kind("land")]))
    assert err.value.plugin == "typo"
    assert str(err.value).startswith("plugin 'typo': implements an unknown hook")
    assert "unknown hook 'register_agency_kind'" in str(err.value)


def test_hook_with_a_wrong_signature() -> None:
    class Bad:
        @hookimpl
        def register_procedures(self, catalog: object) -> list[object]:
            return []

    with pytest.raises(PluginError) as err:
        load(bad=Bad())
    assert err.value.plugin == "bad"
    assert "Argument(s) {'catalog'} are declared in the hookimpl" in str(err.value)


def test_hook_that_raises() -> None:
    with pytest.raises(PluginError) as err:
        load(crashing=plugin(register_agency_kinds=RuntimeError("no settings file")))
    assert err.value.plugin == "crashing"
    assert str(err.value) == "plugin 'crashing': register_agency_kinds failed: no settings file"
    assert isinstance(err.value.__cause__, RuntimeError)


def test_duplicate_agency_kind() -> None:
    with pytest.raises(PluginError) as err:
        load(copycat=plugin(register_agency_kinds=[kind("police")]))
    assert str(err.value) == "plugin 'copycat': agency kind 'police' is already registered"


def test_duplicate_procedure_code() -> None:
    with pytest.raises(PluginError) as err:
        load(copycat=plugin(register_procedures=[proc("1.004194")]))
    assert str(err.value) == "plugin 'copycat': procedure 1.004194 is already registered"


def test_procedure_of_an_unknown_kind() -> None:
    with pytest.raises(PluginError) as err:
        load(orphan=plugin(register_procedures=[proc("1.009999", "permits")]))
    assert str(err.value) == "plugin 'orphan': procedure 1.009999 names unknown kind 'permits'"


@pytest.mark.parametrize(
    ("hook", "value", "message"),
    [
        ("register_agency_kinds", ("police",), "register_agency_kinds must return a list"),
        ("register_agency_kinds", ["land"], "register_agency_kinds returned str"),
        ("register_procedures", [{"code": "1.000046"}], "register_procedures returned dict"),
    ],
)
def test_hook_returning_the_wrong_type(hook: str, value: Any, message: str) -> None:
    with pytest.raises(PluginError) as err:
        load(sloppy=plugin(**{hook: value}))
    assert str(err.value) == f"plugin 'sloppy': {message}"


def test_same_plugin_name_twice() -> None:
    with pytest.raises(PluginError) as err:
        build_plugin_manager(extra={"police": plugin(register_procedures=[])}, only=BUILTIN_PLUGINS)
    # The entry point already took the name: the extra is refused, never silently merged.
    assert err.value.plugin == "police"
    assert "already registered" in str(err.value)


def test_a_misspelt_hook_is_named_with_the_nearest_one() -> None:
    with pytest.raises(PluginError) as err:
        load(typo=plugin(register_procedure=[proc("1.009999")]))
    assert "unknown hook 'register_procedure'" in str(err.value)
    assert str(err.value).endswith("did you mean 'register_procedures'?")


def test_an_unknown_hook_far_from_any_lists_the_hooks() -> None:
    with pytest.raises(PluginError) as err:
        load(odd=plugin(setup_everything=[]))
    assert str(err.value).endswith("the hooks are register_agency_kinds, register_bundles, register_procedures")


def test_a_register_function_without_hookimpl_warns() -> None:
    class Forgetful:
        @staticmethod
        def register_agency_kinds() -> list[AgencyKind]:
            return [kind("permits")]

    with pytest.warns(UnmarkedHookWarning, match=r"'forgetful': register_agency_kinds\(\) is not marked @hookimpl"):
        reg = collect(build_plugin_manager(extra={"forgetful": Forgetful()}, only=BUILTIN_PLUGINS))
    assert "permits" not in reg.agency_kinds  # pluggy ignores it: the warning is the only sign


def test_only_loads_the_named_entry_points() -> None:
    reg = load_registry(only={"police", "tax"})
    assert set(reg.agency_kinds) == {"police", "tax"}
    assert set(reg.plugins) == {"police", "tax"}
