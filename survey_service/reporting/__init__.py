"""The read side: report filters, NPS reports, rollups, exports, the funnel, dashboard queries."""
