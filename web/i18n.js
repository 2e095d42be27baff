// Every user-visible UI string goes through t(key). t() returns plain text:
// put it in the page with textContent / text nodes, never as HTML.
// A later capability adds its keys to BOTH dictionaries below (English is
// the fallback when a Chinese key is missing).

const STORAGE_KEY = 'shuyuan.lang';
export const LANGS = ['zh', 'en'];
const HTML_LANG = { zh: 'zh-CN', en: 'en' };

export const dict = {
  en: {
    'skip': 'Skip to main content',
    'nav.label': 'Main',
    'nav.home': 'Home',
    'lang.label': 'Language',
    'largeText': 'Large text',
    'header.signedInAs': 'Signed in as',
    'header.signIn': 'Sign in',
    'header.register': 'Register',
    'header.signOut': 'Sign out',
    'status.loading': 'Loading…',
    'status.signedOut': 'You have signed out.',
    'footer.text': 'Shuyuan — open courseware for community education. Free and open-source software.',

    'home.title': 'Learning for everyone, everywhere, any time',
    'home.greeting': 'Welcome back, {name}.',
    'home.lead': 'Shuyuan (书院) takes its name from the traditional academies that were open to their whole community. Here residents of every age find open courseware and learn together.',
    'home.cta.text': 'Create a free account to join learning circles and keep track of your learning.',
    'home.cta.register': 'Create an account',
    'home.cta.signin': 'Sign in',
    'home.features': 'What you can do here',
    'home.courseware.title': 'Open courseware',
    'home.courseware.body': 'Schools, colleges, libraries, museums and training institutions publish videos, audio, documents and more: free to watch, listen to and read.',
    'home.circles.title': 'Learning circles',
    'home.circles.body': 'Form a circle with neighbours, classmates or family, study a course together and talk live.',
    'home.regions.title': 'Regions sharing',
    'home.regions.body': 'Province, county and town servers share their catalogs, so a village teaching point sees what the whole country has shared.',

    'signin.title': 'Sign in',
    'signin.email': 'Email',
    'signin.password': 'Password',
    'signin.submit': 'Sign in',
    'signin.pending': 'Signing in…',
    'signin.failed': 'Could not sign in.',
    'signin.invalid': 'The email or password is incorrect.',
    'signin.already': 'You are already signed in as {name}.',
    'signin.noAccount': 'New to Shuyuan?',
    'signin.registerLink': 'Create an account',

    'register.title': 'Create an account',
    'register.email': 'Email',
    'register.name': 'Display name',
    'register.nameHint': 'Other learners see this name in learning circles.',
    'register.password': 'Password',
    'register.passwordHint': 'Use a long password that you do not use anywhere else.',
    'register.submit': 'Create account',
    'register.pending': 'Creating account…',
    'register.failed': 'Could not create the account.',
    'register.signinFailed': 'Your account was created, but signing in failed. Please sign in.',
    'register.haveAccount': 'Already have an account?',
    'register.signinLink': 'Sign in',

    'form.fixFields': 'Please correct the marked fields.',
    'error.title': 'Something went wrong',
    'error.generic': 'Something went wrong. Please try again.',
    'error.network': 'Cannot reach the server. Check your connection and try again.',
    'error.tooMany': 'Too many attempts. Please wait a moment and try again.',
    'error.pageLoad': 'This page could not be loaded.',
    'error.home': 'Go to the home page',

    'notFound.title': 'Page not found',
    'notFound.body': 'There is no page at this address.',
  },
  zh: {
    'skip': '跳到主要内容',
    'nav.label': '主导航',
    'nav.home': '首页',
    'lang.label': '语言',
    'largeText': '大字模式',
    'header.signedInAs': '当前用户',
    'header.signIn': '登录',
    'header.register': '注册',
    'header.signOut': '退出登录',
    'status.loading': '正在加载…',
    'status.signedOut': '您已退出登录。',
    'footer.text': '书院——面向社区教育的开放课程平台。自由开源软件。',

    'home.title': '人人皆学、处处能学、时时可学',
    'home.greeting': '欢迎回来，{name}。',
    'home.lead': '“书院”之名取自古代向整个社区开放的书院。在这里，各个年龄段的居民都能找到开放课程，一起学习。',
    'home.cta.text': '注册免费账号，加入学习圈，记录您的学习进度。',
    'home.cta.register': '创建账号',
    'home.cta.signin': '登录',
    'home.features': '在这里可以做什么',
    'home.courseware.title': '开放课程',
    'home.courseware.body': '学校、高校、图书馆、博物馆和培训机构在这里发布视频、音频、文档等课程资源，免费观看、收听和阅读。',
    'home.circles.title': '学习圈',
    'home.circles.body': '与邻居、同学或家人组建学习圈，一起学习一门课程，实时交流。',
    'home.regions.title': '区域共享',
    'home.regions.body': '省、县、镇各级服务器互相共享课程目录，村里的教学点也能看到全国共享的课程。',

    'signin.title': '登录',
    'signin.email': '电子邮箱',
    'signin.password': '密码',
    'signin.submit': '登录',
    'signin.pending': '正在登录…',
    'signin.failed': '登录失败。',
    'signin.invalid': '邮箱或密码不正确。',
    'signin.already': '您已以“{name}”的身份登录。',
    'signin.noAccount': '第一次使用书院？',
    'signin.registerLink': '创建账号',

    'register.title': '创建账号',
    'register.email': '电子邮箱',
    'register.name': '显示名称',
    'register.nameHint': '学习圈中的其他学员会看到这个名称。',
    'register.password': '密码',
    'register.passwordHint': '请使用足够长、且没有在其他地方用过的密码。',
    'register.submit': '创建账号',
    'register.pending': '正在创建账号…',
    'register.failed': '未能创建账号。',
    'register.signinFailed': '账号已创建，但自动登录失败，请手动登录。',
    'register.haveAccount': '已有账号？',
    'register.signinLink': '登录',

    'form.fixFields': '请修改标出的内容。',
    'error.title': '出错了',
    'error.generic': '出了点问题，请重试。',
    'error.network': '无法连接服务器，请检查网络后重试。',
    'error.tooMany': '尝试次数过多，请稍后再试。',
    'error.pageLoad': '此页面无法加载。',
    'error.home': '返回首页',

    'notFound.title': '页面不存在',
    'notFound.body': '此地址没有对应的页面。',
  },
};

function readStored() {
  try { return localStorage.getItem(STORAGE_KEY); } catch { return null; }
}

/** Any zh* entry in the browser's language list → Chinese, else English. */
export function detectLanguage(languages = navigator.languages || [navigator.language]) {
  return (languages || []).some((l) => String(l).toLowerCase().startsWith('zh')) ? 'zh' : 'en';
}

const stored = readStored();
let current = LANGS.includes(stored) ? stored : detectLanguage();
document.documentElement.lang = HTML_LANG[current];
const listeners = new Set();

export function getLang() { return current; }

/** Switch language, persist the choice, update <html lang>, notify listeners. */
export function setLang(lang) {
  if (!LANGS.includes(lang)) return;
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* storage unavailable */ }
  if (lang === current) return;
  current = lang;
  document.documentElement.lang = HTML_LANG[lang];
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Look up a UI string; `{name}` placeholders are filled from vars (plain text). */
export function t(key, vars) {
  let s = dict[current][key] ?? dict.en[key];
  if (s === undefined) {
    console.warn(`i18n: missing key ${key}`);
    return key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return s;
}
