// GraphiQL for B2X Monitoring, served from local files (see graphiql.html).
"use strict";
const DEFAULT_QUERY = `# B2X Monitoring GraphQL API.
#
# Every request needs an API key: open "Headers" below and enter
#   {"Authorization": "Bearer b2x_..."}
# (b2c up prints an admin key; b2c auth create-key makes more).
# Subscriptions use the same header as their connection parameters.

query RecentJobs {
  jobs(first: 10) {
    totalCount
    edges { node { id jobType tenantId status progressPercent startedAt } }
  }
}

subscription LiveJobs {
  jobStatusChanged { jobId status change progress { percent etaSeconds } }
}
`;
// Shared links: ?query=...&variables=... prefill the editors.
const params = new URLSearchParams(window.location.search);
const url = window.location.href.split("?")[0];
const wsUrl = url.replace(/^http/, "ws");
// One fetcher per set of headers, so subscriptions carry the API key in connection_init.
const fetchers = new Map();
function fetcher(params, opts) {
  const headers = (opts && opts.headers) || {};
  const key = JSON.stringify(headers);
  if (!fetchers.has(key)) {
    fetchers.set(key, GraphiQL.createFetcher({
      url: url,
      subscriptionUrl: wsUrl,
      headers: headers,
      wsConnectionParams: headers,
    }));
  }
  return fetchers.get(key)(params, opts);
}
const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(React.createElement(GraphiQL, {
  fetcher: fetcher,
  defaultQuery: DEFAULT_QUERY,
  query: params.get("query") || undefined,
  variables: params.get("variables") || undefined,
  defaultHeaders: '{"Authorization": "Bearer "}',
  isHeadersEditorEnabled: true,
  // The API key stays in this tab's sessionStorage: gone when the tab closes, never in localStorage.
  storage: window.sessionStorage,
  shouldPersistHeaders: true,
  defaultEditorToolsVisibility: "headers",
}));
