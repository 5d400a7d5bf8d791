// The little the pages need of JavaScript; every page works without it.
document.addEventListener("DOMContentLoaded", () => {
  // The e-mailed sign-in link: submit its one-time form at once (a mail scanner that fetches the link does not).
  const auto = document.querySelector("form[data-autosubmit]");
  if (auto) auto.submit();

  // Billing profile: the VAT/GST ID field exists only outside the United States (A2); the state label follows the country.
  const country = document.getElementById("country");
  const taxId = document.querySelector("[data-tax-id]");
  const stateLabel = document.querySelector("label[for=state]");
  const follow = () => {
    if (taxId) taxId.hidden = country.value === "US" && !document.getElementById("tax_id").value;
    if (stateLabel) stateLabel.firstChild.textContent =
      country.value === "US" ? "State " : country.value === "CA" ? "Province " : "State/Province/Region ";
  };
  if (country) { country.addEventListener("change", follow); follow(); }

  // Payment method: show the card's fields or PayPal's.
  const radios = document.querySelectorAll("input[name=type]");
  const showMethod = () => {
    const chosen = document.querySelector("input[name=type]:checked");
    document.querySelectorAll("[data-method]").forEach((el) => { el.hidden = !chosen || el.dataset.method !== chosen.value; });
  };
  radios.forEach((r) => r.addEventListener("change", showMethod));
  if (radios.length) showMethod();
});
