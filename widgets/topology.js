// Front end of omnitwin's topology graph (anywidget module, no build step).
//
// The Python model `omnitwin.notebook.widgets.CytoscapeGraph` sends all nodes
// and edges in one trait, `elements`, and the source of cytoscape.js (ES module
// build, vendored in widgets/vendor) in `_cytoscape_esm`. This module imports
// that source from a blob: URL, so it needs no network, and paints the graph
// once its container has a size. A click on a node sends
// {event: "click", widget: "node", data: {data: <node data>}} to the kernel.

const cytoscapeModules = (globalThis.omnitwinCytoscapeModules ??= new Map());

// Import cytoscape.js once per page and source text: every widget model
// carries the same text, and evaluating 440 kB again for each view costs time.
function importCytoscape(source) {
  let module = cytoscapeModules.get(source);
  if (module === undefined) {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    module = import(url).then((imported) => {
      URL.revokeObjectURL(url);
      return imported.default;
    });
    cytoscapeModules.set(source, module);
  }
  return module;
}

// Resolve once the element has a non-zero size. cytoscape.js measures its
// container when it starts, and a view is rendered before JupyterLab
// attaches it to the page.
function whenSized(element, signal) {
  return new Promise((resolve) => {
    const observer = new ResizeObserver(() => {
      if (element.clientWidth > 0 && element.clientHeight > 0) {
        observer.disconnect();
        resolve();
      }
    });
    observer.observe(element);
    signal.addEventListener("abort", () => observer.disconnect());
  });
}

// Show an error line below the graph; the next one replaces it.
function showError(container, summary, error) {
  console.error(`omnitwin: ${summary}`, error);
  let line = container.parentElement.querySelector(".omnitwin-cytoscape-error");
  if (line === null) {
    line = document.createElement("div");
    line.className = "omnitwin-cytoscape-error";
    line.style.color = "#b71c1c";
    container.after(line);
  }
  line.textContent = `The topology graph: ${summary}: ${error}`;
}

// Paint the graph into `container` and return a function that removes it.
function paint(cytoscape, model, container) {
  const cy = cytoscape({
    container,
    elements: model.get("elements"),
    style: model.get("cytoscape_style"),
    layout: model.get("cytoscape_layout"),
  });
  // Browser tests find the cytoscape instance here to click a node.
  container.cytoscape = cy;
  cy.on("tap", "node", (event) => {
    model.send({ event: "click", widget: "node", data: { data: event.target.data() } });
  });

  const relayout = () => cy.layout(model.get("cytoscape_layout")).run();
  const onElements = () => {
    // Check the new elements on a headless instance first, so that invalid
    // ones (an edge to a missing node, say) leave the painted graph intact.
    try {
      cytoscape({ headless: true, elements: model.get("elements") }).destroy();
    } catch (error) {
      showError(container, "the new elements are invalid", error);
      return;
    }
    cy.elements().remove();
    cy.add(model.get("elements"));
    relayout();
    container.parentElement.querySelector(".omnitwin-cytoscape-error")?.remove();
  };
  const onStyle = () => cy.style(model.get("cytoscape_style"));
  const onLayout = () => {
    try {
      relayout();
    } catch (error) {
      showError(container, "the layout failed", error);
    }
  };
  model.on("change:elements", onElements);
  model.on("change:cytoscape_style", onStyle);
  model.on("change:cytoscape_layout", onLayout);
  // The container is 100% wide, so a narrower notebook must resize the canvas.
  const resizer = new ResizeObserver(() => cy.resize());
  resizer.observe(container);

  return () => {
    resizer.disconnect();
    model.off("change:elements", onElements);
    model.off("change:cytoscape_style", onStyle);
    model.off("change:cytoscape_layout", onLayout);
    delete container.cytoscape;
    cy.destroy();
  };
}

// render() returns before the graph is painted: the widget manager waits for
// it before it attaches the view to the page, and painting waits for that.
function render({ model, el, signal }) {
  const container = document.createElement("div");
  container.className = "omnitwin-cytoscape";
  container.style.width = "100%";
  container.style.height = model.get("height");
  el.appendChild(container);

  // The height applies before the first paint too: a graph shown at zero
  // height is painted once it gets one.
  const onHeight = () => {
    container.style.height = model.get("height");
    container.cytoscape?.resize();
  };
  model.on("change:height", onHeight);

  let remove = () => {};
  const painted = Promise.all([
    importCytoscape(model.get("_cytoscape_esm")),
    whenSized(container, signal),
  ]).then(([cytoscape]) => {
    if (!signal.aborted) {
      remove = paint(cytoscape, model, container);
    }
  });
  painted.catch((error) => {
    console.error("omnitwin: the topology graph failed to render", error);
    container.textContent = `The topology graph failed to render: ${error}`;
  });
  return () => {
    model.off("change:height", onHeight);
    remove();
  };
}

export default { render };
