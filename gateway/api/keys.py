"""Typed application state."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from gateway.auth import Principal
from gateway.checkpoints import Checkpointer
from gateway.connector import Connector
from gateway.dispatcher import Dispatcher
from gateway.documents.base import DocumentStore
from gateway.documents.intake import DocumentIntake
from gateway.documents.tiered import Documents
from gateway.gate import Gate
from gateway.intake import Intake
from gateway.live import Live
from gateway.metrics import Metrics
from gateway.payments import PaymentPlatform
from gateway.plugin_manager import Registry
from gateway.portal import PortalPusher
from gateway.ratelimit import RateLimits
from gateway.store.base import Store
from gateway.tokens import KeySets

REGISTRY = web.AppKey("registry", Registry)
LIVE = web.AppKey("live", Live)  # configuration a reload may replace: .current.config, .catalog, .routes, .auth
STORE = web.AppKey("store", Store)
INTAKE = web.AppKey("intake", Intake)
DOCUMENTS = web.AppKey("documents", DocumentStore)  # the folder: uploads, fetched and large documents
READ_DOCUMENTS = web.AppKey("read_documents", Documents)  # every document, wherever it is kept
DOCUMENT_INTAKE = web.AppKey("document_intake", DocumentIntake)
UPLOADS = web.AppKey("uploads", asyncio.Semaphore)  # uploads streamed at once ([limits] uploads_in_progress)
HTTP = web.AppKey("http", aiohttp.ClientSession)
CONNECTORS = web.AppKey("connectors", dict[tuple[str, str], Connector])
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
GATE = web.AppKey("gate", Gate)  # breakers, windows and pauses: whether each agency endpoint may be called
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
PORTAL_PUSHER = web.AppKey("portal_pusher", PortalPusher)  # set only when [portal] push_url is
TOKEN_KEYS = web.AppKey("token_keys", KeySets)  # the issuers' public keys, fetched ones cached across reloads
CHECKPOINTER = web.AppKey("checkpointer", Checkpointer)  # set only with an audit key ([audit])
PAYMENTS = web.AppKey("payments", PaymentPlatform)  # set only when [payments] is
PRINCIPAL = web.RequestKey("principal", Principal)
