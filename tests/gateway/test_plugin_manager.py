"""A broken plugin stops start-up with a PluginError that names the plugin and what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import ProcedureSpec
from gateway.connector import AgencyKind
from gateway.errors import PluginError
from gateway.hooks import hookimpl
from gateway.plugin_manager import build_plugin_manager, collect, load_registry
from plugins.police.connector import PoliceConnector, PoliceSettings


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
    collect(build_plugin_manager(extra=dict(plugins)))


def test_builtin_plugins_load() -> None:
    reg = load_registry()
    builtin = {"justice", "land", "police", "social_insurance", "tax"}  # the lienthong.plugins entry points
    assert set(reg.agency_kinds) == builtin
    assert set(reg.procedures) >= {"1.004194", "1.004203"}
    assert {name: reg.plugins[name] for name in builtin} == {name: f"plugins.{name}.plugin" for name in builtin}


def test_a_good_extra_plugin_adds_its_kind_and_procedures() -> None:
    reg = load_registry(
        extra={
            "customs-plugin": plugin(
                register_agency_kinds=[kind("customs")], register_procedures=[proc("1.000046", "customs")]
            )
        }
    )
    assert set(reg.agency_kinds) == set(load_registry().agency_kinds) | {"customs"}
    assert reg.procedures["1.000046"].agency_kind == "customs"


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
        load(orphan=plugin(register_procedures=[proc("1.000046", "customs")]))
    assert str(err.value) == "plugin 'orphan': procedure 1.000046 names unknown kind 'customs'"


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
        build_plugin_manager(extra={"police": plugin(register_procedures=[])})
    # The entry point already took the name: the extra is refused, never silently merged.
    assert err.value.plugin == "police"
    assert "already registered" in str(err.value)
