// Test environment for Vitest + jsdom: DOM cleanup between tests and the few browser APIs
// jsdom lacks (ResizeObserver, scrollIntoView, clipboard) as inert stand-ins.
import { afterEach } from "vitest";
import { cleanup } from "@testing-library/react";
import "@testing-library/jest-dom/vitest";

afterEach(() => cleanup());

class NoResizeObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
}
globalThis.ResizeObserver ??= NoResizeObserver as unknown as typeof ResizeObserver;
// (unbound-method: these lines install stubs on the prototype; no method is taken off and called.)
// eslint-disable-next-line @typescript-eslint/unbound-method
Element.prototype.scrollIntoView ??= function () {};
// eslint-disable-next-line @typescript-eslint/unbound-method
Element.prototype.scrollTo ??= function () {};
