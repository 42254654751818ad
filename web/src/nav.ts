// Client-side navigation; main.ts registers the renderer.

let renderer: () => void = () => {};

export function setRenderer(render: () => void): void {
  renderer = render;
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  renderer();
}
