// The React bindings in a tab (agent.mjs "react"): renders the tab's client
// (window.client) with useCounts and useNotifications; the test compares the
// page with the client's own snapshot.
import { createRoot } from "react-dom/client";
import { useCounts, useNotifications } from "../../dist/react.js";

function App({ client }) {
  const counts = useCounts(client);
  const { items, state, loaded } = useNotifications(client);
  return (
    <section id="react-app" data-state={state} data-loaded={String(loaded)}>
      <span id="r-unread">{counts ? counts.unread : "–"}</span>/<span id="r-total">{counts ? counts.total : "–"}</span>
      <ul id="r-items">
        {items.map((it) => (
          <li key={it.id} data-id={it.id} data-read={String(it.isRead)}>{it.content}</li>
        ))}
      </ul>
    </section>
  );
}

const el = document.createElement("div");
document.body.append(el);
createRoot(el).render(<App client={window.client} />);
