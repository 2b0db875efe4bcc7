// The Sales Order form: the automation run's status with links to what it made, and its actions.
frappe.provide("sales_automation.order");

frappe.ui.form.on("Sales Order", {
	refresh(frm) {
		sales_automation.order.refresh(frm);
	},
});

Object.assign(sales_automation.order, {
	// the fallback: how often to look again while a run is under way and no realtime server is
	// connected, and (for an event missed while the form subscribed) when one is
	POLL_MS: 2000,
	SAFETY_POLL_MS: 30000,

	refresh(frm) {
		clearTimeout(frm.sales_automation_poll);
		if (frm.doc.docstatus !== 1) {
			this.box(frm).remove();
			return;
		}
		this.listen(frm);
		this.follow(frm, frm.doc.name, true, "load");
	},

	// The server publishes `sales_automation_run` to the order's room whenever one of its runs moves
	// (a step done, the run ended): the form is told rather than asking.
	listen(frm) {
		if (frm.sales_automation_listening) return;
		frm.sales_automation_listening = true;
		frappe.realtime.on("sales_automation_run", (event) => {
			if (!frm.doc || event.sales_order !== frm.doc.name || frm.doc.docstatus !== 1) return;
			clearTimeout(frm.sales_automation_poll);
			if (frappe.boot.sales_automation.active_statuses.includes(event.status)) {
				this.follow(frm, frm.doc.name, false, "realtime");
			} else {
				// the run ended: it delivered, billed or paid the order
				frm.sales_automation_told = { run: event.run, status: event.status, by: "realtime" };
				frm.reload_doc();
			}
		});
	},

	realtime_connected() {
		return Boolean(frappe.realtime.socket && frappe.realtime.socket.connected);
	},

	// Show the state; while a background run is queued or running, wait for the server's event, or
	// look again every POLL_MS when no realtime server is connected, and reload the form when it ends.
	follow(frm, sales_order, first, source) {
		frappe.xcall("sales_automation.api.desk.order_automation", { sales_order }).then((state) => {
			if (frm.doc.name !== sales_order) return; // the form moved on to another order
			const names = frappe.boot.sales_automation; // statuses and colours, from the server
			const active = names.active_statuses.includes(state.run && state.run.status);
			if (!first && !active) {
				frm.sales_automation_told = { run: state.run.name, status: state.run.status, by: source };
				frm.reload_doc();
				return;
			}
			// what told the form of this run's state, whatever refreshes the form after that
			const told = frm.sales_automation_told;
			if (told && state.run && told.run === state.run.name && told.status === state.run.status) {
				source = told.by;
			}
			this.show_status(frm, state, source);
			if (first) this.add_buttons(frm, state);
			if (active) {
				clearTimeout(frm.sales_automation_poll);
				frm.sales_automation_poll = setTimeout(
					() => {
						if (frm.$wrapper.is(":visible")) this.follow(frm, sales_order, false, "poll");
					},
					this.realtime_connected() ? this.SAFETY_POLL_MS : this.POLL_MS
				);
			}
		});
	},

	box(frm) {
		let $box = frm.layout.wrapper.find(".sales-automation-status");
		if (!$box.length) {
			$box = $('<div class="sales-automation-status form-message"></div>').insertAfter(
				frm.layout.message
			);
		}
		return $box;
	},

	show_status(frm, state, source) {
		const $box = this.box(frm);
		const run = state.run;
		if (!run && !state.documents.length) {
			$box.remove();
			return;
		}
		const parts = [];
		if (run) {
			let text = __("Sales automation: {0}", [__(run.status)]);
			const names = frappe.boot.sales_automation;
			if (run.status === names.failed || (run.status === names.queued && run.failed_step)) {
				text = __("Sales automation: {0} at {1}", [__(run.status), __(run.failed_step || "")]);
			}
			parts.push(`<b>${frappe.utils.escape_html(text)}</b>`);
			parts.push(this.link("Sales Automation Run", run.name, __("Run {0}", [run.name])));
			if (run.error)
				parts.push(`<span class="text-muted">${frappe.utils.escape_html(run.error)}</span>`);
			// a Partially Completed run: what the order waits for (it continues by itself on arrival)
			if (run.waiting_for)
				parts.push(
					`<span class="sales-automation-waiting">${frappe.utils.escape_html(
						run.waiting_for
					)}</span>`
				);
		}
		if (state.documents.length) {
			parts.push(
				state.documents
					.map((d) => this.link(d.doctype, d.name) + (d.docstatus === 0 ? ` (${__("Draft")})` : ""))
					.join(", ")
			);
		}
		const warning = this.safety_net_warning(state);
		const colour = warning
			? warning.colour
			: frappe.boot.sales_automation.status_colours[run && run.status] || "blue";
		$box.attr("class", `sales-automation-status form-message ${colour}`)
			.attr("data-status", run ? run.status : "")
			.attr("data-told-by", source || "")
			.attr("data-warning", warning ? warning.kind : "")
			.html(`${warning ? warning.html : ""}<div>${parts.join(" · ")}</div>`);
		$box.off("click.sales_automation").on("click.sales_automation", ".sales-automation-retry-now", () => {
			this.call("sales_automation.api.runs.resume_run", { run: run.name }).then(() => frm.reload_doc());
		});
	},

	// A run waiting on the scheduler's retry job: its retry overdue (red), or the scheduler not running
	// (orange), with what to do. Nothing for a run that no longer waits.
	safety_net_warning(state) {
		const names = frappe.boot.sales_automation;
		const run = state.run;
		const scheduler = state.scheduler || { ok: true };
		if (!run || !names.active_statuses.includes(run.status)) return null;
		if (!run.retry_overdue && scheduler.ok) return null;
		const esc = frappe.utils.escape_html;
		let head = "";
		if (run.retry_overdue) {
			head = __("Retry overdue since {0}.", [this.when(run.next_retry_at)]);
		} else if (run.next_retry_at) {
			head = __("Retry due at {0}.", [this.when(run.next_retry_at)]);
		}
		// the scheduler is fine and queued the run again, but nothing took the job
		let what_to_do = esc(
			scheduler.ok ? __("Are the background workers (bench worker) running?") : scheduler.reason
		);
		if (run.status === names.queued && frappe.user.has_role(names.manager_roles)) {
			const button = `<button class="btn btn-xs btn-default sales-automation-retry-now">${esc(
				__("Retry now")
			)}</button>`;
			what_to_do = __("{0} — or press {1}", [what_to_do, button]);
		}
		return {
			kind: run.retry_overdue ? "retry-overdue" : "scheduler",
			colour: run.retry_overdue ? "red" : "orange",
			html: `<div class="sales-automation-warning"><b>${esc(head)}</b> ${what_to_do}</div>`,
		};
	},

	// a server date and time as the user reads it: the time alone when it is today
	when(value) {
		if (!value) return "";
		const [date, ...time] = frappe.datetime.str_to_user(value).split(" ");
		const [today] = frappe.datetime.str_to_user(frappe.datetime.system_datetime()).split(" ");
		return date === today ? time.join(" ") : [date, ...time].join(" ");
	},

	call(method, args) {
		return frappe.call({ method, args, freeze: true }).then((r) => r.message);
	},

	link(doctype, name, label) {
		const esc = frappe.utils.escape_html;
		// Frappe's route helper: version 16 moves the desk from /app to /desk
		return `<a href="${frappe.utils.get_form_link(doctype, name)}"
			data-doctype="${esc(doctype)}" data-name="${esc(name)}">${esc(label || name)}</a>`;
	},

	add_buttons(frm, state) {
		const group = __("Sales Automation");
		frm.remove_custom_button(__("Run Sales Cycle"), group);
		frm.remove_custom_button(__("Cancel Sales Cycle"), group);
		if (state.can_run) {
			frm.add_custom_button(__("Run Sales Cycle"), () => this.run_dialog(frm, state), group);
		}
		if (state.can_cancel) {
			frm.add_custom_button(__("Cancel Sales Cycle"), () => this.cancel_dialog(frm, state), group);
		}
	},

	run_dialog(frm, state) {
		const dialog = new frappe.ui.Dialog({
			title: __("Run Sales Cycle for {0}", [frm.doc.name]),
			fields: [
				{
					fieldname: "rule",
					label: __("Rule"),
					fieldtype: "Link",
					options: "Sales Automation Rule",
					reqd: 1,
					default: state.matching_rule,
					get_query: () => ({ filters: { enabled: 1 } }),
					description: state.matching_rule
						? __("{0} matches this order.", [state.matching_rule])
						: __("No enabled rule matches this order; pick one."),
				},
				{ fieldname: "preview", fieldtype: "HTML" },
			],
			primary_action_label: __("Run"),
			primary_action: ({ rule }) => {
				this.call("sales_automation.api.desk.run_for_order", {
					sales_order: frm.doc.name,
					rule,
				}).then(() => {
					dialog.hide();
					frm.reload_doc();
				});
			},
			secondary_action_label: __("Preview"),
			secondary_action: () => {
				const rule = dialog.get_value("rule");
				if (!rule) {
					frappe.msgprint(__("Pick a rule to preview."));
					return;
				}
				this.call("sales_automation.api.run_sales_cycle", {
					sales_order: frm.doc.name,
					rule,
					dry_run: 1,
				}).then((preview) => dialog.fields_dict.preview.$wrapper.html(this.preview_html(preview)));
			},
		});
		dialog.show();
	},

	preview_html(preview) {
		const esc = frappe.utils.escape_html;
		const rows = preview.steps
			.map((step) => {
				const document = preview.documents.find((d) => frappe.scrub(d.doctype) === step.step);
				const total = document && (document.grand_total ?? document.paid_amount);
				return `<tr><td>${esc(__(frappe.unscrub(step.step)))}</td><td>${esc(__(step.status))}</td>
					<td>${total == null ? "" : format_currency(total, document.currency)}</td>
					<td>${esc(step.message || "")}</td></tr>`;
			})
			.join("");
		const verdict = preview.would_succeed
			? `<p class="text-success">${__("Nothing was saved. Running it would succeed.")}</p>`
			: `<p class="text-danger">${__("Nothing was saved. Running it would fail.")}</p>`;
		return `<div class="sales-automation-preview">${verdict}
			<table class="table table-bordered table-sm">
			<thead><tr><th>${__("Step")}</th><th>${__("Status")}</th><th>${__("Amount")}</th><th>${__(
			"Message"
		)}</th></tr></thead>
			<tbody>${rows}</tbody></table></div>`;
	},

	cancel_dialog(frm, state) {
		const submitted = state.documents.filter((d) => d.docstatus === 1);
		const dialog = new frappe.ui.Dialog({
			title: __("Cancel the Sales Cycle of {0}", [frm.doc.name]),
			fields: [
				{
					fieldtype: "HTML",
					options: `<p>${__("These documents will be cancelled, in this order, all or none:")}</p>
						<p>${submitted.map((d) => this.link(d.doctype, d.name)).join(", ")}</p>`,
				},
				{ fieldname: "cancel_order", label: __("Also cancel the Sales Order"), fieldtype: "Check" },
			],
			primary_action_label: __("Cancel Cycle"),
			primary_action: ({ cancel_order }) => {
				this.call("sales_automation.api.runs.cancel_cycle", {
					sales_order: frm.doc.name,
					cancel_order: cancel_order ? 1 : 0,
				}).then((result) => {
					dialog.hide();
					frappe.show_alert({
						message: __("Cancelled {0} documents", [result.cancelled.length]),
						indicator: "green",
					});
					frm.reload_doc();
				});
			},
		});
		dialog.show();
	},
});
