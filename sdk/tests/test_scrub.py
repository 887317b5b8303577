"""Secrets never leave the process: sensitive keys, URL passwords and (without
``send_default_pii``) cookies and client addresses are filtered before ``before_send``.

The rule for keys (see ``bugnet._scrub``): a key is split into words (``_ - . :``, spaces,
camelCase). It is sensitive when a word is a secret word (password, token, secret, auth, cookie,
session, csrf...), two adjacent words form one (``api key``, ``private key``, ``set cookie``...)
or the words run together spell one, unless its last word only measures the secret (count,
length, size, limit, ttl, timeout, expiry...). ``denylist`` entries add to the rule.
"""

from __future__ import annotations

import logging

import pytest

import bugnet
from bugnet import EventScrubber
from bugnet.testing import capture_events

F = "[Filtered]"

SENSITIVE = [
    "password", "PASSWORD", "db_password", "DB_PASSWORD", "dbPassword", "passwd", "user_pwd",
    "pass", "passphrase", "secret", "client_secret", "aws_secret_access_key", "secretKey",
    "token", "accessToken", "refresh_token", "id-token", "bearer_token", "jwt",
    "api_key", "apiKey", "X-Api-Key", "apikey", "APIKEY", "api.key", "access_key",
    "private_key", "privateKey", "auth", "Authorization", "auth_header", "X-Auth-Token",
    "Proxy-Authorization", "credentials", "Cookie", "Set-Cookie", "cookies", "session",
    "sessionid", "session_id", "SESSION_KEY", "PHPSESSID", "connect.sid", "csrf",
    "csrftoken", "X-CSRFToken", "csrf_token", "XSRF-TOKEN", "credit_card", "card_number",
    "otp", "pin", "ssn", "signature", "HTTP_AUTHORIZATION", "HTTP_COOKIE", "max_tokens",
]  # fmt: skip
NOT_SENSITIVE = [
    "author", "authored_by", "sessions_count", "token_count", "password_length", "session_ttl",
    "cookie_max_size", "auth_timeout", "username", "user_id", "email", "passenger", "compass",
    "keyboard", "key", "primary_key", "monkey", "tokenizer", "description", "cookbook",
    "Accept", "Content-Type", "User-Agent", "amount", "status_code", "url",
]  # fmt: skip


@pytest.mark.parametrize("key", SENSITIVE)
def test_secret_keys_are_sensitive(key):
    assert EventScrubber().is_sensitive(key)


@pytest.mark.parametrize("key", NOT_SENSITIVE)
def test_ordinary_keys_are_kept(key):
    """Counts and sizes of secrets, and words that merely contain a secret word, are not secrets."""
    assert not EventScrubber().is_sensitive(key)


def test_denylist_adds_keys_by_whole_name_or_words_in_a_row():
    scrubber = EventScrubber(denylist=["iban", "card_cvv", "X-Shop-Signature-V2"])
    for key in ("iban", "IBAN", "customer_iban", "card_cvv", "cardCvv", "Card-CVV", "x_shop_signature_v2"):  # fmt: skip
        assert scrubber.is_sensitive(key), key
    assert scrubber.is_sensitive("password")  # the defaults still apply
    for key in ("ibank", "card", "cvv_hint"):
        assert not scrubber.is_sensitive(key), key


SETTINGS = {"api_key": "k-1", "nested": {"client_secret": "cs"}, "debug": True}


def leak_locals(
    password="hunter2",
    db_password="pg-secret",
    accessToken="tok-123",
    settings=SETTINGS,
    author="ada",
    sessions_count=3,
    dsn="postgresql://app:hunter2@db.internal:5432/shop",
):
    raise RuntimeError(f"cannot connect to {dsn}")


def test_local_variables_are_scrubbed():
    with capture_events() as events:
        try:
            leak_locals()
        except RuntimeError:
            bugnet.capture_exception()
    variables = events[0]["exception"]["values"][-1]["stacktrace"]["frames"][-1]["vars"]
    assert variables == {
        "password": F,
        "db_password": F,
        "accessToken": F,
        "settings": {"api_key": F, "nested": {"client_secret": F}, "debug": "True"},
        "author": "'ada'",
        "sessions_count": "3",
        "dsn": f"'postgresql://app:{F}@db.internal:5432/shop'",
    }
    assert SETTINGS["api_key"] == "k-1"  # the app's own objects are never edited


def test_url_passwords_are_masked_in_exception_values_and_messages():
    with capture_events() as events:
        try:
            leak_locals()
        except RuntimeError:
            bugnet.capture_exception()
        bugnet.capture_message(
            "retrying redis://:s3cret@cache:6379/0 and https://example.com/a:b@c"
        )
    exception, message = events
    assert exception["exception"]["values"][-1]["value"] == (
        f"cannot connect to postgresql://app:{F}@db.internal:5432/shop"
    )
    assert message["message"] == f"retrying redis://:{F}@cache:6379/0 and https://example.com/a:b@c"


def test_logged_messages_and_their_params_are_masked():
    with capture_events() as events:
        logging.getLogger("shop.cache").error(
            "cannot reach %s", "redis://cache:s3cret@cache.internal:6379/0"
        )
    logentry = events[0]["logentry"]
    assert logentry["formatted"] == f"cannot reach redis://cache:{F}@cache.internal:6379/0"
    assert logentry["params"] == [f"redis://cache:{F}@cache.internal:6379/0"]
    assert logentry["message"] == "cannot reach %s"


def test_extra_and_custom_contexts_are_scrubbed_and_builtin_contexts_are_not():
    with capture_events() as events:
        bugnet.set_extra("db_password", "pg-secret")
        bugnet.set_extra("config", {"token": "t-1", "author": "ada", "retries": 3})
        bugnet.set_context("payment", {"card_number": "4111111111111111", "amount": 10})
        bugnet.capture_message("checkout failed")
    event = events[0]
    assert event["extra"]["db_password"] == F
    assert event["extra"]["config"] == {"token": F, "author": "ada", "retries": 3}
    assert event["contexts"]["payment"] == {"card_number": F, "amount": 10}
    assert event["contexts"]["runtime"]["name"]
    assert len(event["contexts"]["trace"]["span_id"]) == 16


def test_breadcrumb_data_and_messages_are_scrubbed():
    with capture_events() as events:
        bugnet.add_breadcrumb(
            category="http",
            message="GET https://bot:pa55@api.example/v1",
            data={"url": "https://bot:pa55@api.example/v1", "auth_token": "t", "status_code": 200},
        )
        bugnet.capture_message("after the call")
    (crumb,) = events[0]["breadcrumbs"]["values"]
    assert crumb["message"] == f"GET https://bot:{F}@api.example/v1"
    assert crumb["data"] == {
        "url": f"https://bot:{F}@api.example/v1",
        "auth_token": F,
        "status_code": 200,
    }


def test_attached_thread_stacks_are_scrubbed():
    password = "hunter2"
    with capture_events(attach_stacktrace=True) as events:
        bugnet.capture_message("look")
    frame = events[0]["threads"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["vars"]["password"] == F
    assert password == "hunter2"  # the app's own value is untouched


REQUEST = {
    "url": "https://shop.example/checkout?page=2",
    "method": "POST",
    "headers": {
        "Authorization": "Bearer abc",
        "X-Api-Key": "k-1",
        "Cookie": "sessionid=abc; theme=dark",
        "Accept": "application/json",
        "X-Forwarded-For": "203.0.113.7",
    },
    "cookies": {"sessionid": "abc", "csrftoken": "c", "theme": "dark"},
    "data": {"username": "ada", "password": "p", "card": {"card_number": "4111", "exp": "12/30"}},
    "query_string": "token=abc&page=2&next=https://u:pw@x.example/",
    "env": {"REMOTE_ADDR": "203.0.113.7", "SERVER_NAME": "shop", "HTTP_AUTHORIZATION": "x"},
}


def capture_request(request, **options):
    with capture_events(**options) as events:
        bugnet.capture_event({"message": "checkout failed", "request": request})
    return events[0]["request"]


def test_request_parts_are_scrubbed_with_send_default_pii():
    request = capture_request(REQUEST, send_default_pii=True)
    assert request["headers"] == {
        "Authorization": F,
        "X-Api-Key": F,
        "Cookie": F,
        "Accept": "application/json",
        "X-Forwarded-For": "203.0.113.7",
    }
    assert request["cookies"] == {"sessionid": F, "csrftoken": F, "theme": "dark"}
    assert request["data"] == {
        "username": "ada",
        "password": F,
        "card": {"card_number": F, "exp": "12/30"},
    }
    assert request["query_string"] == f"token={F}&page=2&next=https://u:{F}@x.example/"
    assert request["env"] == {"REMOTE_ADDR": "203.0.113.7", "SERVER_NAME": "shop", "HTTP_AUTHORIZATION": F}  # fmt: skip


def test_request_cookies_and_query_given_as_strings_or_pairs_are_scrubbed():
    request = capture_request(
        {
            "url": "https://shop.example/",
            "cookies": "sessionid=abc; theme=dark",
            "query_string": [["token", "abc"], ["page", "2"]],
            "headers": [["X-Api-Key", "k-1"], ["Accept", "text/html"]],
        },
        send_default_pii=True,
    )
    assert request["cookies"] == f"sessionid={F}; theme=dark"
    assert request["query_string"] == [["token", F], ["page", "2"]]
    assert request["headers"] == [["X-Api-Key", F], ["Accept", "text/html"]]


def test_without_send_default_pii_cookies_and_client_addresses_are_removed():
    request = capture_request(
        {
            **REQUEST,
            "headers": {
                **REQUEST["headers"],
                "Set-Cookie": "sessionid=new",
                "X-Real-IP": "203.0.113.8",
            },
            "cookies": {"theme": "dark"},
        }
    )
    headers = request["headers"]
    for name in ("Cookie", "Set-Cookie", "X-Forwarded-For", "X-Real-IP"):
        assert headers[name] == F, name
    assert headers["Accept"] == "application/json"
    assert request["cookies"] == F  # even harmless cookies: they identify the user
    assert "REMOTE_ADDR" not in request["env"]
    assert request["env"]["SERVER_NAME"] == "shop"


def test_request_set_by_an_event_processor_is_scrubbed_too():
    def add_request(event, hint):
        event["request"] = {"headers": {"Cookie": "a=b", "Authorization": "Basic x"}}
        return event

    with capture_events() as events:
        bugnet.get_isolation_scope().add_event_processor(add_request)
        bugnet.capture_message("hello")
    assert events[0]["request"]["headers"] == {"Cookie": F, "Authorization": F}


def test_custom_scrubber_denylist_adds_keys_to_the_defaults():
    with capture_events(event_scrubber=EventScrubber(denylist=["iban"])) as events:
        bugnet.set_extra("customer_iban", "DE89370400440532013000")
        bugnet.set_extra("password", "p")
        bugnet.set_extra("amount", 10)
        bugnet.capture_message("refund failed")
    assert events[0]["extra"]["customer_iban"] == F
    assert events[0]["extra"]["password"] == F
    assert events[0]["extra"]["amount"] == 10


def test_non_recursive_scrubber_checks_only_the_first_levels():
    scrubber = EventScrubber(recursive=False)
    with capture_events(event_scrubber=scrubber) as events:
        bugnet.set_extra("password", "p")
        bugnet.set_extra("deep", {"inner": {"password": "kept"}})
        bugnet.capture_message("hello")
    assert events[0]["extra"]["password"] == F
    assert events[0]["extra"]["deep"] == {"inner": {"password": "kept"}}


def test_empty_values_stay_as_they_are_and_any_other_value_is_filtered():
    with capture_events() as events:
        bugnet.set_extra("config", {"password": None, "token": "", "pin": 1234, "secret": [1]})
        bugnet.capture_message("hello")
    assert events[0]["extra"]["config"] == {"password": None, "token": "", "pin": F, "secret": F}


def test_before_send_sees_the_scrubbed_event_and_the_app_keeps_its_data():
    seen = []
    config = {"db_password": "pg-secret", "host": "db"}

    def before_send(event, hint):
        seen.append(event["extra"]["config"]["db_password"])
        return event

    with capture_events(before_send=before_send) as events:
        bugnet.set_extra("config", config)
        bugnet.capture_message("hello")
    assert seen == [F]
    assert events[0]["extra"]["config"] == {"db_password": F, "host": "db"}
    assert config == {"db_password": "pg-secret", "host": "db"}


def test_sentry_style_scrubber_arguments_are_accepted():
    """``EventScrubber(send_default_pii=False)`` scrubs client addresses as sentry-sdk's does."""
    scrubber = EventScrubber(denylist=["iban"], recursive=True, send_default_pii=False)
    request = capture_request(REQUEST, send_default_pii=True, event_scrubber=scrubber)
    assert request["headers"]["X-Forwarded-For"] == F
    assert request["env"]["REMOTE_ADDR"] == F
    assert request["headers"]["Accept"] == "application/json"
    custom = EventScrubber(send_default_pii=False, pii_denylist=["client_ip"])
    assert custom.is_sensitive("X-Client-IP")
    assert not custom.is_sensitive("X-Forwarded-For")
    assert not EventScrubber(send_default_pii=True).is_sensitive("X-Forwarded-For")
