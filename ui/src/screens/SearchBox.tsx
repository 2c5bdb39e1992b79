/**
 * Owns the timeline's search box: the query text with a suggestion list for the query
 * language (keys such as `grant:` and their known values, from `query_help`), keyboard driven:
 * ↓/↑ pick, Enter or Tab insert, Esc closes. A wheel anywhere else closes it too (the focus
 * stays): the list would cover the results being scrolled, and while it stayed open over them
 * most of the long frames at 1M receipts came from it (WebKit painting on the CPU: 5–9 frames
 * over 25 ms in 3 s of scrolling with it open, 1 with it closed).
 */
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useQueryHelp } from "../queries";
import { apply, suggest, type Suggestion } from "../query/suggest";

interface Props {
  value: string;
  onChange: (text: string) => void;
}

function todayUtc(): string {
  return new Date().toISOString().slice(0, 10);
}

export function SearchBox({ value, onChange }: Props) {
  const help = useQueryHelp();
  const input = useRef<HTMLInputElement>(null);
  const [caret, setCaret] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const listId = useId();

  const s = useMemo(() => suggest(value, caret, help.data ?? null, todayUtc()), [value, caret, help.data]);
  const shown = open && s.items.length > 0;
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!shown) return;
    const onWheel = (e: WheelEvent) => {
      if (!(e.target instanceof Node && box.current?.contains(e.target))) setOpen(false);
    };
    window.addEventListener("wheel", onWheel, { passive: true, capture: true });
    return () => window.removeEventListener("wheel", onWheel, { capture: true });
  }, [shown]);

  const choose = (item: Suggestion) => {
    const r = apply(value, s, item);
    onChange(r.text);
    setCaret(r.caret);
    setActive(0);
    requestAnimationFrame(() => {
      input.current?.focus();
      input.current?.setSelectionRange(r.caret, r.caret);
    });
  };

  return (
    <div className="searchbox" ref={box} data-testid="searchbox">
      <input
        ref={input}
        type="search"
        role="combobox"
        aria-expanded={shown}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={shown ? `${listId}-${active}` : undefined}
        aria-label="Search receipts"
        placeholder="Search receipts — e.g. weather grant:research outcome:refused amount:>0.10"
        value={value}
        spellCheck={false}
        autoComplete="off"
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart ?? e.target.value.length);
          setOpen(true);
          setActive(0);
        }}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart ?? value.length)}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={(e) => {
          if (!shown) {
            if (e.key === "ArrowDown") setOpen(true);
            return;
          }
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => (a + 1) % s.items.length);
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => (a - 1 + s.items.length) % s.items.length);
          } else if (e.key === "Enter" || e.key === "Tab") {
            const item = s.items[active];
            if (item) {
              e.preventDefault();
              choose(item);
            }
          } else if (e.key === "Escape") {
            e.preventDefault();
            setOpen(false);
          }
        }}
        data-testid="search-input"
      />
      <ul id={listId} role="listbox" className="suggestions" hidden={!shown} data-testid="suggestions">
        {shown &&
          s.items.map((item, i) => (
            <li
              key={item.label}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault(); // keep the focus in the input
                choose(item);
              }}
              data-testid="suggestion"
            >
              <code>{item.label}</code>
              <span className="muted">{item.detail}</span>
            </li>
          ))}
      </ul>
    </div>
  );
}
