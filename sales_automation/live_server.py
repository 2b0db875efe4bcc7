"""A real HTTP server for the test suite and the benchmark: gunicorn serving this site on a free loopback
port (with Frappe's realtime server beside it when asked), and ERPNext's seven-call REST flow as
integrations run it today."""

import os
import socket
import subprocess
import sys
import time

import requests

import frappe


def free_port() -> int:
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
		sock.bind(("127.0.0.1", 0))
		return sock.getsockname()[1]


def site_application(site: str, statics: bool = False):
	"""Frappe's WSGI application pinned to one site, as `bench --site <site> serve` pins it: requests
	that name no site (the realtime server's own, back to this server) reach it too.

	statics=True also serves /assets and /files, as the dev server does, for a browser."""
	import frappe.app

	frappe.app._site = site
	return frappe.app.application_with_statics() if statics else frappe.app.application


class LiveServer:
	"""Starts gunicorn serving the current site (site_application); use as a context manager.

	statics=True also serves /assets and /files, for a browser. realtime=True also starts Frappe's
	realtime server (`node apps/frappe/socketio.js`, what `bench start` runs) on the bench's
	socketio_port, and tells the desk to reach it there (DEV_SERVER, as `bench start` sets it).
	threads=1 with preload=True serves as bench's production config does (supervisor.conf: sync
	workers, the application loaded before the workers fork)."""

	def __init__(
		self,
		workers: int = 2,
		threads: int = 4,
		statics: bool = False,
		realtime: bool = False,
		preload: bool = False,
	):
		self.site = frappe.local.site
		self.sites_path = os.path.abspath(frappe.local.sites_path)
		self.port = free_port()
		self.url = f"http://127.0.0.1:{self.port}"
		self.workers = workers
		self.threads = threads
		self.app = f"sales_automation.live_server:site_application({self.site!r}, {statics!r})"
		self.realtime = realtime
		self.preload = preload
		self.process = None
		self.socketio = None
		self.log_path = os.path.join(self.sites_path, self.site, "logs", f"live-server-{self.port}.log")

	def __enter__(self):
		os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
		self._log = open(self.log_path, "w")
		if self.realtime:
			self.start_realtime_server()
		self.process = subprocess.Popen(
			[
				sys.executable,
				"-m",
				"gunicorn",
				"--bind",
				f"127.0.0.1:{self.port}",
				"--workers",
				str(self.workers),
				"--threads",
				str(self.threads),
				"--timeout",
				"120",
				*(["--preload"] if self.preload else []),
				self.app,
			],
			cwd=self.sites_path,
			stdout=self._log,
			stderr=subprocess.STDOUT,
			env={**os.environ, "DEV_SERVER": "1"} if self.realtime else None,
		)
		deadline = time.monotonic() + 60
		while time.monotonic() < deadline:
			if self.process.poll() is not None:
				raise RuntimeError(f"live server exited early, see {self.log_path}")
			try:
				if self.get("/api/method/ping").status_code == 200:
					return self
			except requests.ConnectionError:
				time.sleep(0.3)
		raise RuntimeError(f"live server did not answer in 60 s, see {self.log_path}")

	def start_realtime_server(self):
		port = int(frappe.conf.socketio_port or 9000)
		with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
			if sock.connect_ex(("127.0.0.1", port)) == 0:
				raise RuntimeError(f"port {port} (socketio_port) is taken: stop the dev servers (make stop)")
		bench_path = os.path.dirname(self.sites_path)
		self.socketio = subprocess.Popen(
			["node", os.path.join(bench_path, "apps", "frappe", "socketio.js")],
			cwd=bench_path,
			# FRAPPE_SITE: the site of connections that name none (a browser at 127.0.0.1)
			env={**os.environ, "FRAPPE_SITE": self.site, "FRAPPE_SOCKETIO_PORT": str(port)},
			stdout=self._log,
			stderr=subprocess.STDOUT,
		)
		deadline = time.monotonic() + 30
		while time.monotonic() < deadline:
			if self.socketio.poll() is not None:
				raise RuntimeError(f"the realtime server exited early, see {self.log_path}")
			with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
				if sock.connect_ex(("127.0.0.1", port)) == 0:
					return
			time.sleep(0.2)
		raise RuntimeError(f"the realtime server did not listen on {port} in 30 s, see {self.log_path}")

	def __exit__(self, *exc):
		for process in (self.process, self.socketio):
			if process is None:
				continue
			process.terminate()
			try:
				process.wait(timeout=20)
			except subprocess.TimeoutExpired:
				process.kill()
		self._log.close()

	def session(self, api_key: str, api_secret: str) -> requests.Session:
		session = requests.Session()
		session.headers.update(
			{
				"Authorization": f"token {api_key}:{api_secret}",
				"X-Frappe-Site-Name": self.site,
				"Accept": "application/json",
			}
		)
		return session

	def get(self, path: str, **kwargs):
		headers = {"X-Frappe-Site-Name": self.site, **kwargs.pop("headers", {})}
		return requests.get(self.url + path, headers=headers, timeout=60, **kwargs)


def rest_cycle(http: requests.Session, url: str, order: dict, bank_account: str | None = None) -> dict:
	"""ERPNext's sales cycle as an integration runs it today: 7 round trips through the REST API and
	the whitelisted mappers. Returns the four submitted documents by doctype."""

	def check(response):
		if not response.ok:
			raise AssertionError(
				f"{response.request.method} {response.url}: {response.status_code} {response.text[:800]}"
			)
		return response.json()

	def call(method, **data):
		return check(http.post(f"{url}/api/method/{method}", json=data))["message"]

	def create(doctype, doc):
		return check(http.post(f"{url}/api/resource/{doctype}", json={**doc, "docstatus": 1}))["data"]

	sales_order = create("Sales Order", order)
	delivery_note = create(
		"Delivery Note",
		call(
			"erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
			source_name=sales_order["name"],
		),
	)
	sales_invoice = create(
		"Sales Invoice",
		call(
			"erpnext.stock.doctype.delivery_note.delivery_note.make_sales_invoice",
			source_name=delivery_note["name"],
		),
	)
	payment_entry = call(
		"erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry",
		dt="Sales Invoice",
		dn=sales_invoice["name"],
		bank_account=bank_account,
	)
	# a bank account needs a reference; integrations pass their own transaction id
	payment_entry.update(
		{"reference_no": sales_order["name"], "reference_date": sales_order["transaction_date"]}
	)
	return {
		"Sales Order": sales_order,
		"Delivery Note": delivery_note,
		"Sales Invoice": sales_invoice,
		"Payment Entry": create("Payment Entry", payment_entry),
	}
