// Server data fetched and cached in one place: the Pages, the chosen Page, its topics (polled
// live) and its flows.
import { create } from 'zustand';
import { api, must, type FlowSummary, type Notification, type Topic } from '../api/client';

const PAGE_KEY = 'botflow.page';

interface ServerData {
  pages: string[];
  page: string | null;
  topics: Topic[];
  topicsLoaded: boolean;
  flows: FlowSummary[];
  /** The Page's topic notifications, newest first (polled while the topics page shows them). */
  notifications: Notification[];
  loadPages(): Promise<void>;
  choosePage(page: string): void;
  refreshTopics(): Promise<void>;
  refreshFlows(): Promise<void>;
  refreshNotifications(): Promise<void>;
  createTopic(name: string): Promise<Topic>;
}

export const useServer = create<ServerData>((set, get) => ({
  pages: [],
  page: null,
  topics: [],
  topicsLoaded: false,
  flows: [],
  notifications: [],
  async loadPages() {
    const pages = (await must(api.GET('/api/pages'))).map((p) => p.id);
    const saved = sessionStorage.getItem(PAGE_KEY);
    const page = saved && pages.includes(saved) ? saved : (pages[0] ?? null);
    set({ pages, page });
  },
  choosePage(page) {
    sessionStorage.setItem(PAGE_KEY, page);
    set({ page, topics: [], topicsLoaded: false, flows: [], notifications: [] });
  },
  async refreshTopics() {
    const page = get().page;
    if (!page) return;
    const topics = await must(api.GET('/api/pages/{page}/topics', { params: { path: { page } } }));
    if (get().page === page) set({ topics, topicsLoaded: true });
  },
  async refreshFlows() {
    const page = get().page;
    if (!page) return;
    const flows = await must(api.GET('/api/pages/{page}/flows', { params: { path: { page } } }));
    if (get().page === page) set({ flows });
  },
  async refreshNotifications() {
    const page = get().page;
    if (!page) return;
    const notifications = await must(api.GET('/api/pages/{page}/notifications', { params: { path: { page } } }));
    if (get().page === page) set({ notifications });
  },
  async createTopic(name) {
    const page = get().page;
    if (!page) throw new Error('no Page chosen');
    const topic = await must(
      api.POST('/api/pages/{page}/topics', { params: { path: { page } }, body: { name } }),
    );
    await get().refreshTopics();
    return topic;
  },
}));

/** How often waiting opt-in counts are refreshed while a page shows them. */
export const LIVE_REFRESH_MS = 1500;

/** How often notification progress is refreshed while the topics page shows it. */
export const PROGRESS_REFRESH_MS = 500;
