"""Rules files: the samples load; every error names the file, the key path and the problem."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from tracking_service.estimator.rules import RulesError, load_rules, parse_rules
from tracking_service.settings import bundled_rules_path


@pytest.mark.parametrize("name", ["us_shop.toml", "br_shop.toml"])
def test_samples_load(name: str) -> None:
    rules = load_rules(bundled_rules_path(name))
    assert len(rules.shipping_options) >= 4
    assert rules.origins[0].cutoff in (time(14), time(15))


def test_sample_origins() -> None:
    us = load_rules(bundled_rules_path("us_shop.toml")).origins[0]
    br = load_rules(bundled_rules_path("br_shop.toml")).origins[0]
    assert (us.time_zone, us.subdivision) == ("America/New_York", "NY")
    assert (br.time_zone, br.subdivision) == ("America/Sao_Paulo", "SP")


def sample() -> dict[str, Any]:
    return tomllib.loads(bundled_rules_path("us_shop.toml").read_text())


def problems_of(data: dict[str, Any]) -> RulesError:
    with pytest.raises(RulesError) as info:
        parse_rules(data, "shop.toml")
    assert str(info.value).startswith("shop.toml: ")
    return info.value


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (lambda d: d["shipping_options"][2]["transit"][0].update(min=4),
         "shipping_options[2].transit[0].max", "less than min"),
        (lambda d: d["shipping_options"][1].update(confidence=1.0),
         "shipping_options[1].confidence", "less than 1"),
        (lambda d: d["shipping_options"][1].update(confidence=0),
         "shipping_options[1].confidence", "greater than 0"),
        (lambda d: d["origins"][0].update(time_zone="America/Gotham"),
         "origins[0].time_zone", "not a known IANA time zone"),
        (lambda d: d["origins"][0]["holidays"].update(country="XX"),
         "origins[0].holidays.country", "ISO 3166-1"),
        (lambda d: d["origins"][0]["holidays"].update(subdivision="ZZ"),
         "origins[0].holidays.subdivision", "no subdivision 'ZZ'"),
        (lambda d: d["origins"][0]["holidays"].update(open_on=["Festivus"]),
         "origins[0].holidays.open_on[0]", "unknown holiday name 'Festivus'"),
        (lambda d: d["origins"][0]["holidays"].update(categories=["bank"]),
         "origins[0].holidays.categories[0]", "unknown category 'bank'"),
        (lambda d: d["shipping_options"][3]["transit"][1].update(zone="atlantis"),
         "shipping_options[3].transit[1].zone", "unknown zone 'atlantis'"),
        (lambda d: d["shipping_options"][0].update(origins=["la"]),
         "shipping_options[0].origins[0]", "unknown origin 'la'"),
        (lambda d: d["shipping_options"][1].update(code="same-day"),
         "shipping_options[1].code", "duplicate code 'same-day'"),
        (lambda d: d["shipping_options"][0].update(colour="red"),
         "shipping_options[0].colour", "unknown key"),
        (lambda d: d["shipping_options"][0].pop("carrier"),
         "shipping_options[0].carrier", "required key is missing"),
        (lambda d: d["shipping_options"][0].update(price=14.9),
         "shipping_options[0].price", "strings"),
        (lambda d: d["shipping_options"][0].update(currency="DOLLARS"),
         "shipping_options[0].currency", "ISO 4217"),
        (lambda d: d["shipping_options"][0].update(delivery_weekdays=["Mon", "Funday"]),
         "shipping_options[0].delivery_weekdays[1]", "not a weekday"),
        (lambda d: d["zones"][1].update(subdivisions=["NY", "QQ"]),
         "zones[1].subdivisions", "not subdivisions of US: QQ"),
        (lambda d: d["origins"][0].update(cutoff="25:00"),
         "origins[0].cutoff", "time"),
        (lambda d: d["origins"][0]["holidays"].update(closed_dates=["2026-02-30"]),
         "origins[0].holidays.closed_dates[0].date", "date"),
        (lambda d: d.update(origins=[]),
         "origins", "at least 1"),
    ],
)  # fmt: skip
def test_errors_name_the_key_path(change: Any, key: str, words: str) -> None:
    data = sample()
    change(data)
    error = problems_of(data)
    assert any(k == key and words in msg for k, msg in error.problems), error.problems
    assert f"{key}: " in str(error)


def test_all_problems_reported_at_once() -> None:
    data = sample()
    data["shipping_options"][0]["confidence"] = 2
    data["origins"][0]["time_zone"] = "Mars/Olympus"
    error = problems_of(data)
    assert len(error.problems) == 2
    assert "2 problems" in str(error)


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[[origins]\nid = 1\n')
    with pytest.raises(RulesError) as info:
        load_rules(broken)
    assert str(info.value).startswith(f"{broken}: TOML syntax error")
    assert "line 2" in str(info.value)
    with pytest.raises(RulesError, match="cannot read the file"):
        load_rules(tmp_path / "absent.toml")


def test_file_path_in_validation_error(tmp_path: Path) -> None:
    text = bundled_rules_path("br_shop.toml").read_text()
    bad = tmp_path / "br.toml"
    bad.write_text(text.replace("max = 9 }", "max = 3 }", 1))  # north: min 5, max 3
    with pytest.raises(RulesError) as info:
        load_rules(bad)
    assert str(info.value) == (
        f"{bad}: shipping_options[2].transit[6].max: max (3) is less than min (5)"
    )


# --- which history an option learns from ------------------------------------------------------


def test_history_defaults_to_the_options_own_label() -> None:
    rules = load_rules(bundled_rules_path("br_shop.toml"))
    options = {o.code: o for o in rules.shipping_options}
    assert options["express"].history_label == ("correios", "sedex 10")
    assert not options["express"].history.learn_from_unlabelled
    assert options["same-day"].history_label == ("loggi", "same day")
    assert options["standard"].history.learn_from_unlabelled  # the Olist history


def test_history_label_override() -> None:
    data = sample()
    data["shipping_options"][2]["history"] = {"carrier": " UPS ", "service": "Ground"}
    option = parse_rules(data).shipping_options[2]
    assert option.history_label == ("ups", "ground")


@pytest.mark.parametrize(
    ("history", "key", "words"),
    [
        ({"carrier": "  "}, "shipping_options[1].history.carrier", "at least 1 character"),
        ({"service": 7}, "shipping_options[1].history.service", "string"),
        ({"learn_from_unlabelled": "yes"},
         "shipping_options[1].history.learn_from_unlabelled", "boolean"),
        ({"from": "olist"}, "shipping_options[1].history.from", "unknown key"),
    ],
)  # fmt: skip
def test_history_key_errors(history: dict[str, Any], key: str, words: str) -> None:
    data = sample()
    data["shipping_options"][1]["history"] = history
    error = problems_of(data)
    assert any(k == key and words in msg for k, msg in error.problems), error.problems


def test_only_one_option_learns_from_unlabelled_records() -> None:
    data = tomllib.loads(bundled_rules_path("br_shop.toml").read_text())
    data["shipping_options"][3]["history"] = {"learn_from_unlabelled": True}
    error = problems_of(data)
    assert error.problems == [
        (
            "shipping_options[3].history.learn_from_unlabelled",
            "only one shipping option may learn from unlabelled records and shipping_options[2] "
            "('standard') already does: a record without carrier and service cannot tell which "
            "service carried it",
        )
    ]
