import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Navigate, NavLink, Route, Routes } from "react-router-dom";
import { ChainProvider, useChain } from "./connection";
import { ChatPage } from "./pages/Chat";
import { ComparePage } from "./pages/Compare";
import { ContributePage } from "./pages/Contribute";
import { DatanetPage } from "./pages/Datanet";
import { DatanetsPage } from "./pages/Datanets";
import { FactoryPage } from "./pages/Factory";
import { ProvenancePage } from "./pages/Provenance";
import { RewardsPage } from "./pages/Rewards";
import { RunPage } from "./pages/Run";
import { ValidatorPage } from "./pages/Validator";
import "./styles.css";
import { AccountPicker, WalletProvider } from "./wallet";

function Shell() {
  const chain = useChain();
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header>
        <div className="brand">
          Provenant <span>Studio</span>
        </div>
        <nav aria-label="Main">
          <NavLink to="/datanets">Datanets</NavLink>
          <NavLink to="/contribute">Contribute</NavLink>
          <NavLink to="/validate">Validate</NavLink>
          <NavLink to="/factory">ModelFactory</NavLink>
          <NavLink to="/rewards">Rewards</NavLink>
          <NavLink to="/chat">Chat</NavLink>
          <NavLink to="/provenance">Provenance</NavLink>
        </nav>
        <AccountPicker />
      </header>
      <main id="main">
        <Routes>
          <Route path="/" element={<Navigate to="/datanets" replace />} />
          <Route path="/datanets" element={<DatanetsPage />} />
          <Route path="/datanets/:id" element={<DatanetPage />} />
          <Route path="/contribute" element={<ContributePage />} />
          <Route path="/validate" element={<ValidatorPage />} />
          <Route path="/factory" element={<FactoryPage />} />
          <Route path="/runs/:id" element={<RunPage />} />
          <Route path="/compare" element={<ComparePage />} />
          <Route path="/rewards" element={<RewardsPage />} />
          <Route path="/chat" element={<ChatPage />} />
          <Route path="/provenance" element={<ProvenancePage />} />
          <Route path="/provenance/:target" element={<ProvenancePage />} />
          <Route path="*" element={<p role="alert">No page here. Pick one from the navigation above.</p>} />
        </Routes>
      </main>
      <footer>
        {chain.name} at {chain.url}
        {chain.isDev ? " (development chain: the dev accounts are offered)" : ""}
      </footer>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <BrowserRouter>
      <ChainProvider>
        <WalletProvider>
          <Shell />
        </WalletProvider>
      </ChainProvider>
    </BrowserRouter>
  </StrictMode>,
);
