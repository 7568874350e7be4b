// Entry point of the builder UI served at /ui/.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xyflow/react/dist/style.css';
import './styles.css';
import { takeTokenFromHash } from './api/client';
import { App } from './App';

takeTokenFromHash();
const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
