// Desk scenarios in headless Debian chromium, driven by playwright-core (no browser download).
// Run by sales_automation/tests/test_desk_browser.py, which prepares the data, serves the site and
// checks the database afterwards:
//   node desk.mjs <scenario>   with SA_URL, SA_SITE, SA_USER, SA_PASSWORD, SA_SCREENSHOTS, SA_ARGS (JSON)
// Prints one JSON line with what the page showed; exits 1 (after a screenshot) when a step fails.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import schedulerScenarios from "./scheduler.mjs";

const env = (name, fallback) => {
	const value = process.env[name] ?? fallback;
	if (value === undefined) throw new Error(`${name} is not set`);
	return value;
};
const URL = env("SA_URL");
const SITE = env("SA_SITE");
const USER = env("SA_USER");
const PASSWORD = env("SA_PASSWORD");
const SHOTS = env("SA_SCREENSHOTS");
const ARGS = JSON.parse(env("SA_ARGS", "{}"));
const CHROMIUM = env("SA_CHROMIUM", "/usr/bin/chromium");
const TIMEOUT = 90_000;

const slug = (doctype) => doctype.toLowerCase().replaceAll(" ", "-");

async function login(page) {
	await page.goto(`${URL}/login`);
	await page.fill("#login_email", USER);
	await page.fill("#login_password", PASSWORD);
	await Promise.all([page.waitForURL(/\/app/), page.click(".btn-login")]);
	await page.waitForFunction(() => window.frappe && frappe.boot && frappe.boot.user);
}

// Frappe's own "page is idle" signal: no request in flight and the route rendered.
async function settle(page) {
	await page.waitForFunction(() => !frappe.request.ajax_count && !$(".freeze:visible").length);
}

async function openForm(page, doctype, name) {
	await page.goto(`${URL}/app/${slug(doctype)}/${encodeURIComponent(name)}`);
	await page.waitForFunction(
		([doctype, name]) => window.cur_frm && cur_frm.doctype === doctype && cur_frm.docname === name,
		[doctype, name]
	);
	await settle(page);
}

// Type a value into a form field as a person does (then Tab), and wait for the form to be dirty.
async function typeInto(page, fieldname, value) {
	const input = page.locator(`.frappe-control[data-fieldname="${fieldname}"] input`);
	await input.fill(String(value));
	await input.press("Tab");
	await page.waitForFunction(() => cur_frm.is_dirty());
}

async function clickButton(page, label) {
	await page.locator(".page-actions, .page-head").getByRole("button", { name: label, exact: true }).first().click();
}

const scenarios = {
	// Log in, open a rule, change it and save it with Ctrl+S.
	async save_rule(page) {
		await openForm(page, "Sales Automation Rule", ARGS.rule);
		await typeInto(page, "priority", ARGS.priority);
		await page.keyboard.press("Control+s");
		await page.waitForFunction(
			(priority) => !cur_frm.is_dirty() && cur_frm.doc.priority === priority,
			ARGS.priority
		);
		await settle(page);
		return { saved_priority: await page.evaluate(() => cur_frm.doc.priority) };
	},

	// Open a new rule at /app/sales-automation-rule/new as a user with a default company and currency: every
	// condition starts empty. Name it, give it a priority, save it with Ctrl+S.
	async new_rule(page) {
		await page.goto(`${URL}/app/${slug("Sales Automation Rule")}/new`);
		await page.waitForFunction(() => window.cur_frm && cur_frm.doctype === "Sales Automation Rule" && cur_frm.is_new());
		await settle(page);
		const opened = await page.evaluate(
			(fields) => ({
				conditions: Object.fromEntries(fields.map((field) => [field, cur_frm.doc[field] ?? null])),
				defaults: {
					company: frappe.defaults.get_user_default("company") ?? null,
					currency: frappe.defaults.get_user_default("currency") ?? null,
				},
			}),
			ARGS.condition_fields
		);
		await page.locator('.frappe-control[data-fieldname="rule_name"] input').fill(ARGS.rule_name);
		const priority = page.locator('.frappe-control[data-fieldname="priority"] input');
		await priority.fill(String(ARGS.priority));
		await priority.press("Tab");
		await page.keyboard.press("Control+s");
		await page.waitForFunction(
			(name) => !cur_frm.is_new() && !cur_frm.is_dirty() && cur_frm.doc.name === name,
			ARGS.rule_name,
			{ timeout: TIMEOUT }
		);
		await settle(page);
		return { ...opened, saved: await page.evaluate(() => cur_frm.doc.name) };
	},

	// On a rule's form, change a condition without saving, then "Test on recent orders": filter the dialog by
	// customer, read each order's verdict, preview one order's cycle.
	async simulate_rule(page) {
		await openForm(page, "Sales Automation Rule", ARGS.rule);
		await typeInto(page, "min_grand_total", ARGS.min_grand_total);
		await clickButton(page, "Test on recent orders");
		const dialog = page.locator(".sales-automation-simulator.modal:visible");
		await dialog.locator(".sales-automation-simulator-orders").waitFor({ state: "visible", timeout: TIMEOUT });
		const customer = dialog.locator('.frappe-control[data-fieldname="customer"] input');
		await customer.fill(ARGS.customer);
		// leave the field by clicking the dialog's title: Escape closes the dialog itself when the
		// suggestions have not opened yet (a slow machine)
		await dialog.locator(".modal-title").click();
		await page.waitForFunction((name) => cur_dialog && cur_dialog.get_value("customer") === name, ARGS.customer, {
			timeout: TIMEOUT,
		});
		await dialog.getByRole("button", { name: "Refresh", exact: true }).click();
		await page.waitForFunction(
			(names) => {
				const rows = [...document.querySelectorAll(".sales-automation-simulator tr[data-sales-order]")];
				return JSON.stringify(rows.map((row) => row.dataset.salesOrder).sort()) === JSON.stringify([...names].sort());
			},
			ARGS.sales_orders,
			{ timeout: TIMEOUT }
		);
		await settle(page);
		const orders = await dialog.locator("tr[data-sales-order]").evaluateAll((rows) =>
			rows.map((row) => ({
				name: row.dataset.salesOrder,
				matches: row.dataset.matches === "1",
				would_run: row.dataset.wouldRun === "1",
				why: row.querySelector(".sales-automation-why").innerText.trim(),
			}))
		);
		await page.screenshot({ path: join(SHOTS, "simulate_rule-orders.png") });
		const row = dialog.locator(`tr[data-sales-order="${ARGS.preview}"]`);
		await row.getByRole("button", { name: "Preview", exact: true }).click();
		const preview = dialog.locator(`.sales-automation-simulator-preview[data-sales-order="${ARGS.preview}"]`);
		await preview.waitFor({ state: "visible", timeout: TIMEOUT });
		await settle(page);
		return {
			orders,
			preview: {
				would_succeed: (await preview.getAttribute("data-would-succeed")) === "1",
				documents: await preview
					.locator(".sales-automation-preview-document")
					.evaluateAll((documents) => documents.map((document) => document.dataset.doctype)),
				text: (await preview.innerText()).trim(),
			},
			form_dirty: await page.evaluate(() => cur_frm.is_dirty()),
		};
	},

	// Open a submitted order whose background run waits (the test holds the order), with Frappe's
	// realtime server connected; print {"ready": true} for the test to let the run go, then watch the bar
	// turn Completed. `told_by` says what moved it: "realtime" (an event), "poll" or "load".
	async watch_run(page) {
		await openForm(page, "Sales Order", ARGS.sales_order);
		await page.waitForSelector('.sales-automation-status[data-status="Queued"]', { timeout: TIMEOUT });
		await page.waitForFunction(() => frappe.realtime.socket && frappe.realtime.socket.connected, null, {
			timeout: TIMEOUT,
		});
		await page.evaluate(() => {
			window.sales_automation_events = [];
			frappe.realtime.on("sales_automation_run", (event) => window.sales_automation_events.push(event));
		});
		let calls_after_ready = 0;
		page.on("request", (request) => {
			if (request.url().includes("sales_automation.api.desk.order_automation")) calls_after_ready += 1;
		});
		console.log(JSON.stringify({ ready: true }));
		const status = page.locator('.sales-automation-status[data-status="Completed"]');
		await status.waitFor({ state: "visible", timeout: TIMEOUT });
		await settle(page);
		return {
			told_by: await status.getAttribute("data-told-by"),
			events: await page.evaluate(() =>
				window.sales_automation_events.map((event) => [event.run, event.status, event.step])
			),
			order_automation_calls: calls_after_ready,
		};
	},

	// Submit a draft Sales Order from its form; the run indicator turns Completed with links.
	async submit_order(page) {
		await openForm(page, "Sales Order", ARGS.sales_order);
		await clickButton(page, "Submit");
		await page.locator(".modal:visible").getByRole("button", { name: "Yes" }).click();
		const status = page.locator(".sales-automation-status");
		await status.waitFor({ state: "visible", timeout: TIMEOUT });
		await page.waitForSelector('.sales-automation-status[data-status="Completed"]', { timeout: TIMEOUT });
		await settle(page);
		return {
			status: await status.getAttribute("data-status"),
			links: await status.locator("a[data-doctype]").evaluateAll((links) =>
				links.map((a) => ({ doctype: a.dataset.doctype, name: a.dataset.name, href: a.getAttribute("href") }))
			),
		};
	},

	// Retry a failed run from its form.
	async retry_run(page) {
		await openForm(page, "Sales Automation Run", ARGS.run);
		const before = await page.evaluate(() => cur_frm.doc.status);
		await clickButton(page, "Retry");
		await page.waitForFunction(() => cur_frm.doc.status === "Completed", null, { timeout: TIMEOUT });
		await settle(page);
		return { before, after: await page.evaluate(() => cur_frm.doc.status) };
	},

	// Select three orders in the Sales Order list, run the cycle in bulk, watch the progress finish.
	async bulk_run(page) {
		await page.goto(`${URL}/app/sales-order?customer=${encodeURIComponent(ARGS.customer)}`);
		await page.waitForFunction(() => window.cur_list && cur_list.doctype === "Sales Order");
		await page.waitForFunction(
			(count) => cur_list.data && cur_list.data.length === count,
			ARGS.sales_orders.length,
			{ timeout: TIMEOUT }
		);
		await settle(page);
		const list = page.locator(".page-container:visible");
		await list.locator(".list-row-head .list-check-all:visible").first().check();
		await list.locator(".actions-btn-group > button:visible").first().click();
		await list.locator(".actions-btn-group .dropdown-menu").getByText("Run Sales Cycle", { exact: true }).click();
		const dialog = page.locator(".modal:visible");
		await dialog.getByRole("button", { name: "Start" }).click();
		// the progress dialog (not its bar: at 0 % the bar has no width, and one job may finish all
		// three runs before the first poll moves it)
		const progress = page.locator(".modal:visible .progress");
		await progress.waitFor({ state: "visible", timeout: TIMEOUT });
		const progressText = (await page.locator(".modal:visible .progress + .description").innerText()).trim();
		await page.screenshot({ path: join(SHOTS, "bulk_run-progress.png") });
		const summary = page.locator(".sales-automation-bulk-summary");
		await summary.waitFor({ state: "visible", timeout: TIMEOUT });
		return {
			saw_progress: true,
			progress: progressText,
			completed: Number(await summary.getAttribute("data-completed")),
			failed: Number(await summary.getAttribute("data-failed")),
			summary: (await summary.innerText()).trim(),
		};
	},

	...schedulerScenarios({ URL, ARGS, SHOTS, TIMEOUT, openForm, settle }),
};

async function main() {
	const name = process.argv[2];
	const scenario = scenarios[name];
	if (!scenario) throw new Error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
	mkdirSync(SHOTS, { recursive: true });
	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		args: [
			"--headless",
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			"--disable-dev-shm-usage",
		],
	});
	const context = await browser.newContext({
		viewport: { width: 1400, height: 900 },
		extraHTTPHeaders: { "X-Frappe-Site-Name": SITE },
	});
	context.setDefaultTimeout(30_000);
	const page = await context.newPage();
	const console_errors = [];
	page.on("pageerror", (error) => console_errors.push(String(error)));
	let result;
	try {
		await login(page);
		result = await scenario(page);
		await page.screenshot({ path: join(SHOTS, `${name}.png`) });
	} catch (error) {
		await page.screenshot({ path: join(SHOTS, `${name}-failure.png`) }).catch(() => {});
		console.log(JSON.stringify({ ok: false, error: String(error.stack || error), page_errors: console_errors }));
		await browser.close();
		process.exit(1);
	}
	console.log(JSON.stringify({ ok: true, ...result, page_errors: console_errors }));
	await browser.close();
}

main().catch((error) => {
	console.log(JSON.stringify({ ok: false, error: String(error.stack || error) }));
	process.exit(1);
});
