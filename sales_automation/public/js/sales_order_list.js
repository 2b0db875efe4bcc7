// The Sales Order list: run the sales cycle for the selected (or all filtered) orders in the background,
// with a progress bar and a summary at the end. Extends ERPNext's list settings, which load first.
frappe.provide("sales_automation.bulk");

(() => {
	const settings = (frappe.listview_settings["Sales Order"] =
		frappe.listview_settings["Sales Order"] || {});
	const erpnext_onload = settings.onload;
	settings.onload = function (listview) {
		if (erpnext_onload) erpnext_onload.apply(this, arguments);
		if (!frappe.user.has_role(frappe.boot.sales_automation.manager_roles)) return;
		listview.page.add_actions_menu_item(__("Run Sales Cycle"), () => {
			const names = listview.get_checked_items(true);
			sales_automation.bulk.start(listview, { sales_orders: names }, names.length);
		});
		listview.page.add_menu_item(__("Run Sales Cycle for Filtered Orders"), () => {
			const filters = [...listview.get_filters_for_args(), ["Sales Order", "docstatus", "=", 1]];
			sales_automation.bulk.start(listview, { filters }, null);
		});
	};
})();

Object.assign(sales_automation.bulk, {
	POLL_MS: 1500,

	start(listview, target, count) {
		const dialog = new frappe.ui.Dialog({
			title: __("Run Sales Cycle"),
			fields: [
				{
					fieldtype: "HTML",
					options: `<p>${
						count == null
							? __("For every submitted order the list's filters show (at most 500).")
							: __("For the {0} selected orders.", [count])
					} ${__(
						"Orders already done or under way are skipped. The runs go through the background queue."
					)}</p>`,
				},
				{
					fieldname: "rule",
					label: __("Rule"),
					fieldtype: "Link",
					options: "Sales Automation Rule",
					get_query: () => ({ filters: { enabled: 1 } }),
					description: __("Leave empty to use the rule that matches each order."),
				},
			],
			primary_action_label: __("Start"),
			primary_action: ({ rule }) => {
				dialog.hide();
				frappe
					.call({
						method: "sales_automation.api.runs.run_bulk",
						args: { ...target, rule: rule || null },
						freeze: true,
					})
					.then((r) => this.follow(listview, r.message));
			},
		});
		dialog.show();
	},

	// Progress from the server's `sales_automation_run` events (one per run that moves, to the user who
	// started them), each followed by one status read; polling every POLL_MS only when no realtime
	// server is connected, and every SAFETY_POLL_MS for an event missed when one is.
	SAFETY_POLL_MS: 15000,

	follow(listview, started) {
		const runs = started.runs;
		if (!runs.length) {
			this.summary(listview, { total: 0, by_status: {}, failed: [] }, started.skipped);
			return;
		}
		const title = __("Running the sales cycle");
		frappe.show_progress(title, 0, runs.length, __("{0} of {1} orders done", [0, runs.length]));
		const mine = new Set(runs);
		let timer = null;
		let finished = false;
		const connected = () => Boolean(frappe.realtime.socket && frappe.realtime.socket.connected);
		const on_event = (event) => {
			if (mine.has(event.run)) look();
		};
		const later = () => {
			clearTimeout(timer);
			timer = setTimeout(look, connected() ? this.SAFETY_POLL_MS : this.POLL_MS);
		};
		const look = frappe.utils.debounce(() => {
			if (finished) return;
			frappe
				.xcall("sales_automation.api.runs.bulk_status", { runs })
				.then((status) => {
					frappe.show_progress(
						title,
						status.done,
						status.total,
						__("{0} of {1} orders done", [status.done, status.total])
					);
					if (status.finished && !finished) {
						finished = true;
						clearTimeout(timer);
						frappe.realtime.off("sales_automation_run", on_event);
						frappe.hide_progress();
						this.summary(listview, status, started.skipped);
					} else if (!finished) {
						later();
					}
				})
				.catch(later);
		}, 300);
		frappe.realtime.on("sales_automation_run", on_event);
		later();
	},

	summary(listview, status, skipped) {
		const esc = frappe.utils.escape_html;
		const by_status = status.by_status || {};
		const names = frappe.boot.sales_automation;
		const link = (doctype, name) =>
			`<a href="${frappe.utils.get_form_link(doctype, name)}">${esc(name)}</a>`;
		const lines = [
			`<p>${__("Completed: {0}", [by_status[names.completed] || 0])}${
				by_status[names.partially_completed]
					? " · " + __("Partially completed: {0}", [by_status[names.partially_completed]])
					: ""
			} · ${__("Failed: {0}", [status.failed.length])} · ${__("Skipped: {0}", [skipped.length])}</p>`,
		];
		if (status.failed.length) {
			lines.push(
				`<p><b>${__("Failed")}</b></p><ul>${status.failed
					.map(
						(row) =>
							`<li>${link("Sales Order", row.sales_order)}: ${link(
								"Sales Automation Run",
								row.run
							)} ${esc(row.error || "")}</li>`
					)
					.join("")}</ul>`
			);
		}
		if (skipped.length) {
			lines.push(
				`<p><b>${__("Skipped")}</b></p><ul>${skipped
					.map((row) => `<li>${link("Sales Order", row.sales_order)}: ${esc(row.reason)}</li>`)
					.join("")}</ul>`
			);
		}
		frappe.msgprint({
			title: __("Sales Cycle: Summary"),
			message: `<div class="sales-automation-bulk-summary" data-completed="${
				by_status[names.completed] || 0
			}" data-failed="${status.failed.length}">${lines.join("")}</div>`,
			indicator: status.failed.length ? "orange" : "green",
		});
		listview.refresh();
	},
});
