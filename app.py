"""Wiring only: the Chalice app, its blueprints, middleware and authorizer.

Nothing heavy is imported here: SDKs, settings and clients are created on
first use (see docs/benchmarks.md for the cold-start measurement).
"""
from chalice import Chalice

from chalicelib.analytics import api as analytics_api
from chalicelib.analytics import jobs as analytics_jobs
from chalicelib.booking import api as booking_api
from chalicelib.booking import jobs as booking_jobs
from chalicelib.clinics import api as clinics_api
from chalicelib.core.web import add_preflight_routes, http_middleware
from chalicelib.identity import api as identity_api
from chalicelib.identity import authorizer
from chalicelib.meta import api as meta_api
from chalicelib.meta import jobs as meta_jobs
from chalicelib.meta import portal as meta_portal
from chalicelib.records import api as records_api
from chalicelib.notify import api as notify_api
from chalicelib.notify import jobs as notify_jobs
from chalicelib.payments import wallet_api
from chalicelib.payments import wallet_jobs
from chalicelib.payments import api as payments_api

app = Chalice(app_name="clinic-backend", configure_logs=False)  # core.log owns the logs (JSON lines)
app.api.binary_types = []  # every body we serve is text (JSON, YAML, HTML)

app.register_middleware(http_middleware, "http")
app.register_blueprint(authorizer.bp)
app.register_blueprint(meta_api.bp)
app.register_blueprint(meta_portal.bp)
app.register_blueprint(identity_api.bp)
app.register_blueprint(clinics_api.bp)
app.register_blueprint(booking_api.bp)
app.register_blueprint(booking_jobs.bp)
app.register_blueprint(records_api.bp)
app.register_blueprint(notify_api.bp)
app.register_blueprint(notify_jobs.bp)
app.register_blueprint(meta_jobs.bp)
app.register_blueprint(wallet_api.bp)
app.register_blueprint(wallet_jobs.bp)
app.register_blueprint(payments_api.bp)
app.register_blueprint(analytics_api.bp)
app.register_blueprint(analytics_jobs.bp)
# Last: a CORS preflight route for every path above (the portal's origin only; core.web).
add_preflight_routes(app)
