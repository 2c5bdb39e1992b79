// Rendering helpers for component tests: a fresh QueryClient (no retries, no cache sharing)
// and the toast provider the screens report through.
import type { ReactElement } from "react";
import { render } from "@testing-library/react";
import { QueryClientProvider } from "@tanstack/react-query";
import { ToastProvider } from "../components/toasts";
import { newQueryClient } from "../queries";

export function renderScreen(ui: ReactElement) {
  const client = newQueryClient();
  const r = render(
    <QueryClientProvider client={client}>
      <ToastProvider>{ui}</ToastProvider>
    </QueryClientProvider>,
  );
  return { ...r, client };
}
